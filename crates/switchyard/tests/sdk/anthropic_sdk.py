"""Drives the gateway with the official Anthropic Python SDK, changing only base_url and api_key.
`fast` is served by an OpenAI-compatible provider, `claude` by an Anthropic one, `gem` by a
Gemini one: the SDK must not be able to tell."""
import os

import anthropic

BASE = os.environ["SWITCHYARD_BASE"]
client = anthropic.Anthropic(base_url=BASE, api_key=os.environ["SWITCHYARD_API_KEY"], max_retries=0)
HELLO = [{"role": "user", "content": "Say hello"}]
TOOL = {"name": "lookup", "description": "Looks things up",
        "input_schema": {"type": "object", "properties": {"answer": {"type": "string"}}}}

for model in ["fast", "claude", "gem"]:
    msg = client.messages.create(model=model, max_tokens=64, system="Be brief.", messages=HELLO)
    assert msg.model == model, msg.model
    assert msg.content[0].type == "text" and msg.content[0].text == "Hello from the fake", msg
    assert msg.stop_reason == "end_turn", msg.stop_reason
    assert msg.usage.input_tokens == 11 and msg.usage.output_tokens == 7, msg.usage

    with client.messages.stream(model=model, max_tokens=64, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from the fake", (model, text)
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 7, (model, final)

    # Tool use, answered, then streamed.
    forced = {"type": "tool", "name": "lookup"}
    msg = client.messages.create(model=model, max_tokens=64, tools=[TOOL], tool_choice=forced,
                                 messages=[{"role": "user", "content": "Look it up"}])
    assert msg.stop_reason == "tool_use", (model, msg)
    call = next(b for b in msg.content if b.type == "tool_use")
    assert call.name == "lookup" and call.input == {"answer": "fake"}, (model, call)
    follow = client.messages.create(model=model, max_tokens=64, tools=[TOOL], messages=[
        {"role": "user", "content": "Look it up"},
        {"role": "assistant", "content": msg.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "42"}]},
    ])
    assert follow.content[0].text == "Hello from the fake", (model, follow)
    with client.messages.stream(model=model, max_tokens=64, tools=[TOOL], tool_choice=forced,
                                messages=[{"role": "user", "content": "Look it up"}]) as stream:
        final = stream.get_final_message()
    call = next(b for b in final.content if b.type == "tool_use")
    assert call.name == "lookup" and call.input == {"answer": "fake"}, (model, final)

ids = [m.id for m in client.models.list()]
assert "claude" in ids and "fast" in ids and "embed" not in ids, ids
assert client.models.retrieve("gem").display_name == "gem"

count = client.messages.count_tokens(model="claude", messages=HELLO)
assert count.input_tokens > 0, count

try:
    client.messages.create(model="no-such-model", max_tokens=5, messages=HELLO)
    raise SystemExit("expected an error")
except anthropic.NotFoundError as e:
    assert e.status_code == 404 and e.body["error"]["type"] == "not_found_error", e.body

try:
    client.messages.create(model="gem", max_tokens=50, messages=HELLO,
                           thinking={"type": "enabled", "budget_tokens": 20})
    raise SystemExit("expected an error")
except anthropic.BadRequestError as e:
    assert "thinking" in e.body["error"]["message"], e.body

try:
    anthropic.Anthropic(base_url=BASE, api_key="sk-sy-wrong", max_retries=0).messages.create(
        model="fast", max_tokens=5, messages=HELLO)
    raise SystemExit("expected an auth error")
except anthropic.AuthenticationError as e:
    assert e.body["error"]["type"] == "authentication_error", e.body

print("ALL OK")
