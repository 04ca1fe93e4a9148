stat -c %s /p/x.tar.part 2>/dev/null || echo 0
