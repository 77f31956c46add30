"""Drives the gateway with Google's official `google-genai` SDK, changing only base_url and
api_key. `gem` is served by a Gemini provider, `fast` by an OpenAI-compatible one, `claude` by
an Anthropic one."""
import os

from google import genai
from google.genai import errors, types

BASE = os.environ["SWITCHYARD_BASE"]
client = genai.Client(api_key=os.environ["SWITCHYARD_API_KEY"], http_options=types.HttpOptions(base_url=BASE))

lookup = types.FunctionDeclaration(
    name="lookup", description="Looks things up",
    parameters=types.Schema(type="OBJECT", properties={"answer": types.Schema(type="STRING")}))
tools_config = types.GenerateContentConfig(
    tools=[types.Tool(function_declarations=[lookup])],
    tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(
        mode="ANY", allowed_function_names=["lookup"])),
    automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
)

for model in ["gem", "fast", "claude"]:
    r = client.models.generate_content(
        model=model, contents="Say hello",
        config=types.GenerateContentConfig(system_instruction="Be brief.", max_output_tokens=64, temperature=0.5))
    assert r.text == "Hello from the fake", (model, r)
    assert r.usage_metadata.prompt_token_count == 11, r.usage_metadata
    assert r.usage_metadata.candidates_token_count == 7, r.usage_metadata
    assert r.candidates[0].finish_reason == types.FinishReason.STOP, r.candidates[0].finish_reason

    chunks = list(client.models.generate_content_stream(model=model, contents="Say hello"))
    text = "".join(c.text or "" for c in chunks)
    assert text == "Hello from the fake", (model, text)
    assert chunks[-1].usage_metadata.candidates_token_count == 7, chunks[-1]

    r = client.models.generate_content(model=model, contents="Look it up", config=tools_config)
    calls = r.function_calls
    assert calls and calls[0].name == "lookup" and calls[0].args == {"answer": "fake"}, (model, r)
    # The answer to the call, sent back as the SDK builds it.
    history = [
        types.Content(role="user", parts=[types.Part(text="Look it up")]),
        r.candidates[0].content,
        types.Content(role="user", parts=[types.Part.from_function_response(name="lookup", response={"result": 42})]),
    ]
    r = client.models.generate_content(model=model, contents=history,
                                       config=types.GenerateContentConfig(tools=[types.Tool(function_declarations=[lookup])]))
    assert r.text == "Hello from the fake", (model, r)

names = [m.name for m in client.models.list()]
assert "models/gem" in names and "models/claude" in names and "models/embed" not in names, names
claude = client.models.get(model="claude")
assert claude.output_token_limit == 1000 and "generateContent" in claude.supported_actions, claude
count = client.models.count_tokens(model="gem", contents="Hello there, how are you?")
assert count.total_tokens > 0, count

try:
    client.models.generate_content(model="no-such-model", contents="x")
    raise SystemExit("expected an error")
except errors.ClientError as e:
    assert e.code == 404 and e.status == "NOT_FOUND", (e.code, e.status)

# (Kept in a variable: a client that is garbage-collected closes its connection pool.)
wrong = genai.Client(api_key="wrong", http_options=types.HttpOptions(base_url=BASE))
try:
    wrong.models.generate_content(model="gem", contents="x")
    raise SystemExit("expected an auth error")
except errors.ClientError as e:
    assert e.code == 401 and e.status == "UNAUTHENTICATED", (e.code, e.status)

print("ALL OK")
