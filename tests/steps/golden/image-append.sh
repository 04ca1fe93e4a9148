umask 077 && mkdir -p /p && touch /p/x.tar.part && truncate -s 1024 /p/x.tar.part && cat >> /p/x.tar.part
