"""How commands reach a host: the Connection interface, local and SSH connections, host keys, shell quoting, results."""
