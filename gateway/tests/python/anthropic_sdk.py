"""The official Anthropic SDK for Python, pointed at the gateway: one plain call, one streamed call.

Prints a JSON summary for the Rust test that runs it. Environment: GATEWAY_URL, GATEWAY_TOKEN.
"""
import json
import os
import sys

import anthropic


def main() -> int:
    client = anthropic.Anthropic(
        base_url=os.environ["GATEWAY_URL"],
        auth_token=os.environ["GATEWAY_TOKEN"],
        max_retries=0,
        timeout=30,
    )
    messages = [{"role": "user", "content": "Say hello"}]
    plain = client.messages.create(model="claude-sonnet-4-5", max_tokens=256, messages=messages)
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=256, messages=messages) as stream:
        streamed_text = "".join(stream.text_stream)
        final = stream.get_final_message()
    denied = None
    try:
        client.messages.create(model="gpt-4o", max_tokens=8, messages=messages)
    except anthropic.BadRequestError as e:
        denied = {"status": e.status_code, "type": e.body["error"]["type"] if isinstance(e.body, dict) else None}
    print(json.dumps({
        "plain_text": "".join(b.text for b in plain.content if b.type == "text"),
        "plain_stop": plain.stop_reason,
        "plain_output_tokens": plain.usage.output_tokens,
        "stream_text": streamed_text,
        "stream_stop": final.stop_reason,
        "stream_output_tokens": final.usage.output_tokens,
        "denied": denied,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
