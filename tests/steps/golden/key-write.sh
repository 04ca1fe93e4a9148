umask 077 && mkdir -p .ascend-deploy/t && cat > .ascend-deploy/t/api-key.tmp.$$ && chmod 600 .ascend-deploy/t/api-key.tmp.$$ && mv -f .ascend-deploy/t/api-key.tmp.$$ .ascend-deploy/t/api-key
