set -a; . ./.ascend-deploy/t/env; set +a && export RAY_ADDRESS=10.0.0.1:6379 && python3 -c '
import dataclasses, json, sys, time
argv, sampling, schema = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
batch = int(sys.argv[4])
prompts = [json.loads(line) for line in sys.stdin if line.strip()]
def emit(**event):
    print("GEN " + json.dumps(event), flush=True)
try:
    from vllm.utils.argparse_utils import FlexibleArgumentParser
except ImportError:
    from vllm.utils import FlexibleArgumentParser
from vllm import LLM, SamplingParams
from vllm.engine.arg_utils import EngineArgs
parser = EngineArgs.add_cli_args(FlexibleArgumentParser())
ns = parser.parse_args(argv)
base = parser.parse_args(["--model", ns.model])
names = {f.name for f in dataclasses.fields(EngineArgs)}
kwargs = {k: v for k, v in vars(ns).items() if k in names and v != getattr(base, k, None)}
kwargs["model"] = ns.model
started = time.time()
llm = LLM(**kwargs)
emit(event="loaded", seconds=round(time.time() - started, 2))
if schema is not None:
    try:
        from vllm.sampling_params import StructuredOutputsParams
        sampling["structured_outputs"] = StructuredOutputsParams(json=schema)
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams
        sampling["guided_decoding"] = GuidedDecodingParams(json=schema)
params = SamplingParams(**sampling)
done = out_tokens = in_tokens = 0
t0 = time.time()
for start in range(0, len(prompts), batch):
    chunk = prompts[start:start + batch]
    for p, o in zip(chunk, llm.generate([p["prompt"] for p in chunk], params, use_tqdm=False)):
        outs = [{"text": c.text, "tokens": len(c.token_ids), "finish_reason": c.finish_reason} for c in o.outputs]
        out_tokens += sum(c["tokens"] for c in outs)
        in_tokens += len(o.prompt_token_ids or [])
        emit(event="result", id=p["id"], prompt=p["prompt"], prompt_tokens=len(o.prompt_token_ids or []), outputs=outs)
    done += len(chunk)
    emit(event="progress", done=done, total=len(prompts), seconds=round(time.time() - t0, 3), output_tokens=out_tokens)
emit(event="done", done=done, seconds=round(time.time() - t0, 3), prompt_tokens=in_tokens, output_tokens=out_tokens)
' '["--model", "/data/models/Qwen2.5-7B-Instruct", "--served-model-name", "Qwen2.5-7B-Instruct", "--tensor-parallel-size", "2", "--pipeline-parallel-size", "1", "--distributed-executor-backend", "ray", "--max-model-len", "32768", "--max-num-seqs", "256", "--max-num-batched-tokens", "8192", "--block-size", "128", "--gpu-memory-utilization", "0.9", "--dtype", "auto"]' '{"max_tokens": 8}' null 8 2> .ascend-deploy/t/generate.log
