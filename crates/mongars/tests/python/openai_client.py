"""The official `openai` client against monGARS, unchanged.

Usage: python3 openai_client.py BASE_URL TOKEN
TOKEN is an access token or an API key. Prints one JSON line with what it
got; exits non-zero on any failure.
"""
import json
import sys

from openai import OpenAI

base_url, token = sys.argv[1], sys.argv[2]
client = OpenAI(base_url=base_url, api_key=token, max_retries=0, timeout=60)

models = [m.id for m in client.models.list()]

completion = client.chat.completions.create(
    model=models[0],
    messages=[{"role": "user", "content": "What is the capital of France?"}],
    temperature=0,
    max_tokens=32,
)
text = completion.choices[0].message.content

pieces = []
stream = client.chat.completions.create(
    model=models[0],
    messages=[{"role": "user", "content": "Name three colors."}],
    temperature=0,
    max_tokens=32,
    stream=True,
)
finish = None
for chunk in stream:
    if chunk.choices:
        pieces.append(chunk.choices[0].delta.content or "")
        finish = chunk.choices[0].finish_reason or finish

embedding = client.embeddings.create(model="any", input=["hello there", "general kenobi"])

assert text, "empty completion"
assert "".join(pieces), "empty stream"
assert finish in ("stop", "length"), finish
print(json.dumps({
    "models": models,
    "completion": text,
    "usage": completion.usage.total_tokens,
    "stream": "".join(pieces),
    "chunks": len(pieces),
    "finish": finish,
    "embeddings": [len(e.embedding) for e in embedding.data],
}))
