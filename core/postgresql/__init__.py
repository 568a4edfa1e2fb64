"""The PostgreSQL backend: Django's, for a server that stops answering: connection attempts made one
at a time while it answers none, and a wait for its answer that outlasts any answer ended
(`base.DatabaseWrapper`)."""
