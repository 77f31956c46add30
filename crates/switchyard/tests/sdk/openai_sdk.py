"""Drives the gateway with the official OpenAI Python SDK, changing only base_url and api_key."""
import os
import sys

import openai
from openai import OpenAI

client = OpenAI(base_url=os.environ["SWITCHYARD_BASE_URL"], api_key=os.environ["SWITCHYARD_API_KEY"], max_retries=0)

models = [m.id for m in client.models.list()]
assert models == ["fast", "pro", "embed", "offline", "auto"], models

chat = client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "Say hello"}])
assert chat.model == "fast", chat.model
assert chat.choices[0].message.content == "Hello from the fake", chat.choices[0].message.content
assert chat.usage.prompt_tokens == 11 and chat.usage.completion_tokens == 7, chat.usage

pieces = []
stream = client.chat.completions.create(
    model="fast", messages=[{"role": "user", "content": "Say hello"}], stream=True,
    stream_options={"include_usage": True},
)
usage = None
for chunk in stream:
    assert chunk.model == "fast", chunk.model
    if chunk.usage is not None:
        usage = chunk.usage
    for choice in chunk.choices:
        if choice.delta.content:
            pieces.append(choice.delta.content)
assert "".join(pieces) == "Hello from the fake", pieces
assert usage is not None and usage.total_tokens == 18, usage

emb = client.embeddings.create(model="embed", input=["a", "b"])
assert len(emb.data) == 2 and emb.model == "embed", emb

try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    raise SystemExit("expected an error")
except openai.NotFoundError as e:
    assert e.status_code == 404, e.status_code
    assert e.code == "model_not_found", e.code

try:
    OpenAI(base_url=os.environ["SWITCHYARD_BASE_URL"], api_key="sk-sy-wrong", max_retries=0).models.list()
    raise SystemExit("expected an auth error")
except openai.AuthenticationError as e:
    assert e.code == "invalid_api_key", e.code

print("ALL OK")
sys.stdout.flush()
