"""Administrative operations, shared by the CLI and (later) the admin HTTP API."""
