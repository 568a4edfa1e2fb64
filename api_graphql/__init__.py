PATH = "graphql/"  # where config/urls.py mounts the endpoint (HTTP), and the websocket's path
