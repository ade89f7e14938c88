"""The operators' phone app (Kivy). Its screens arrive with the mobile-app issue; it talks to cloud_api over HTTP only."""
