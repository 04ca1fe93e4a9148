"""Send one chat request to the cluster `ascend-deploy up` deployed, with the OpenAI client.

    python docs/examples/openai_chat.py INVENTORY ["your question"]

The endpoint and served model name come from `ascend-deploy status --json`; the API key (if the
inventory names one) from the local variable `serve.api_key_env` names.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from openai import OpenAI


def main() -> int:
    inventory = sys.argv[1]
    question = sys.argv[2] if len(sys.argv) > 2 else "Hello! Tell me about Ascend NPUs."
    out = subprocess.run(
        [sys.executable, "-m", "toolkit", "status", inventory, "--json"], capture_output=True, text=True
    )
    status = json.loads(out.stdout)
    if not status.get("ok"):
        print(f"the cluster is not ready: {out.stderr.strip() or status}", file=sys.stderr)
        return 1
    key_env = None
    from toolkit.config.loader import load_inventory

    key_env = load_inventory(inventory).spec.serve.api_key_env
    client = OpenAI(base_url=status["endpoint"], api_key=os.environ.get(key_env or "", "") or "EMPTY", timeout=120)
    reply = client.chat.completions.create(
        model=status["served_model"], messages=[{"role": "user", "content": question}], max_tokens=48
    )
    print(f"endpoint : {status['endpoint']}")
    print(f"model    : {status['served_model']}")
    print(f"question : {question}")
    print(f"answer   : {reply.choices[0].message.content!r}")
    print("(the demo model has random weights and a tokenizer trained on Python sources: expect gibberish)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
