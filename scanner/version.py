"""The package's version: a leaf module, so that a report writer or the service's OpenAPI
document can name it without importing the package root (and whatever it grows)."""

__version__ = "0.1.0"
