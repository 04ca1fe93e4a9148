umask 077 && mkdir -p .ascend-deploy/t && printf '%s' '# written by ascend-deploy; sourced before every command of this cluster
export A='"'"'1 2'"'"'
export B='"'"'$x'"'"'
' > .ascend-deploy/t/env.tmp.$$ && chmod 600 .ascend-deploy/t/env.tmp.$$ && mv -f .ascend-deploy/t/env.tmp.$$ .ascend-deploy/t/env
