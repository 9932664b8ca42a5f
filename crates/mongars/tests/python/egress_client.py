"""A user of a monGARS server inside a network namespace, for the tests.

Usage: python3 egress_client.py BASE_URL
Logs in as the bootstrap admin (root / secret-password), chats twice,
stores a memory and finds it by meaning, asks for an embedding, and prints
one JSON line with what it got. Standard library only; exits non-zero on
any failure.
"""
import json
import sys
import urllib.request

base = sys.argv[1]


def call(method, path, body=None, token=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read() or b"null")


token = call("POST", "/api/v1/auth/login",
             {"username": "root", "password": "secret-password"})["access_token"]
first = call("POST", "/api/v1/conversation/chat",
             {"message": "My name is Ada and I live in Lyon."}, token)
second = call("POST", "/api/v1/conversation/chat",
              {"message": "What is the capital of France?"}, token)
call("POST", "/api/v1/memories", {"text": "I keep bees on my balcony."}, token)
found = call("GET", "/api/v1/memories?q=Which%20insects%20do%20I%20look%20after%3F&limit=1",
             token=token)
embedding = call("POST", "/v1/embeddings",
                 {"model": "all-MiniLM-L6-v2", "input": "An offline sentence."}, token)
print(json.dumps({
    "replies": [first["response"], second["response"]],
    "found": [m["text"] for m in found],
    "dimensions": len(embedding["data"][0]["embedding"]),
}))
