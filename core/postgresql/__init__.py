"""The PostgreSQL backend: Django's, with connection attempts to a server that does not answer made
one at a time (`base.DatabaseWrapper`)."""
