{ E=$(cat .ascend-deploy/t/container-engine 2>/dev/null) && [ -n "$E" ] || { echo 'no container engine recorded here: run ascend-deploy up' >&2; exit 127; }; "$E" exec -i -w "$HOME" ascend-deploy-t bash -c '[ -f /usr/local/Ascend/ascend-toolkit/set_env.sh ] && . /usr/local/Ascend/ascend-toolkit/set_env.sh
[ -f /usr/local/Ascend/nnal/atb/set_env.sh ] && . /usr/local/Ascend/nnal/atb/set_env.sh
set -a; . ./.ascend-deploy/t/env; set +a && true'; }
