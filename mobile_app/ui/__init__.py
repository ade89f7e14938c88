"""The Kivy side of the app: widgets, screens and the App. Everything else in mobile_app is Kivy-free."""
