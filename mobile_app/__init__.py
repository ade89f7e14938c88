"""The operators' phone app (Kivy, MVC). ``models/`` and ``controllers/`` are plain Python; ``ui/`` and
``views/*.kv`` are the Kivy side; it talks to cloud_api over HTTP and WebSocket only. Entry: ``main.run_app``."""
