"""Console pages of this app."""

urlpatterns: list = []
