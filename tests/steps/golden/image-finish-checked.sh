podman load -i /p/x.tar.part >&2 || exit $?; rm -f /p/x.tar.part; echo "LOADED $(podman image inspect --format '{{.Id}}' cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd 2>/dev/null)"
