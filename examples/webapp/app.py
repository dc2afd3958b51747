"""A FastAPI app whose users log in, get a JWT for membrane-rtc, and chat peer to peer.

The app serves its own page. Its users log in (``POST /login``) and get a short-lived access
token that ``actors.jwt_auth:JWTPeer`` verifies with the secret the app shares with the
signaling server; the page joins the room with it and talks to the room-mates over WebRTC
data channels: the chat goes browser to browser, the server carries only the signaling.

    export MEMBRANE_RTC_JWT_SECRET=change-me-to-a-long-random-secret   # in both terminals
    membrane-rtc serve --room chat --peer-class actors.jwt_auth:JWTPeer \\
        --allowed-origin http://127.0.0.1:8000
    python examples/webapp/app.py      # then open http://127.0.0.1:8000/ in two browsers

Needs ``pip install 'membrane-rtc[examples]'`` (FastAPI, uvicorn). docs/howto/webapp.md
walks through it.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import secrets
import socket
import sys
import time
from importlib import resources
from pathlib import Path

import jwt
import uvicorn
from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel

HERE = Path(__file__).resolve().parent
#: The secret membrane-rtc's JWTPeer checks the tokens with (HS256: 32 bytes at least).
SECRET_VARIABLE = "MEMBRANE_RTC_JWT_SECRET"
#: The room the page joins, and how long a token is good for (a resume shows it again).
ROOM = "chat"
TOKEN_SECONDS = 15 * 60


def password_hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)


def demo_users() -> dict[str, tuple[bytes, bytes]]:
    """A stand-in for your user database: name -> (salt, password hash)."""
    users = {}
    for name, password in (("alice", "wonderland"), ("bob", "builder")):
        salt = secrets.token_bytes(16)
        users[name] = (salt, password_hash(password, salt))
    return users


USERS = demo_users()
app = FastAPI(title="membrane-rtc chat")
app.state.signaling_url = os.environ.get("SIGNALING_URL", "ws://127.0.0.1:8080/webrtc")


class Login(BaseModel):
    username: str
    password: str


@app.get("/")
def page() -> FileResponse:
    return FileResponse(HERE / "static" / "index.html")


@app.get("/client.js")
def client_js() -> Response:
    """membrane-rtc's JavaScript client, from the installed package. The signaling server
    serves it too, but a page imports a module from another origin only with CORS headers,
    which it does not send: the page loads it from its own origin."""
    code = resources.files("membrane_rtc").joinpath("static", "client.js").read_text()
    return Response(code, media_type="text/javascript")


@app.post("/login")
def login(form: Login) -> dict[str, str]:
    """The user's access token for the room, and where to use it."""
    salt, expected = USERS.get(form.username, (b"-", b""))
    if not hmac.compare_digest(password_hash(form.password, salt), expected):
        raise HTTPException(status_code=401, detail="wrong name or password")
    now = int(time.time())
    claims = {"sub": form.username, "name": form.username, "room": ROOM,
              "iat": now, "exp": now + TOKEN_SECONDS}
    token = jwt.encode(claims, os.environ[SECRET_VARIABLE], algorithm="HS256")
    return {"token": token, "url": f"{app.state.signaling_url}/{ROOM}", "name": form.username}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0: any free port")
    parser.add_argument("--signaling-url", default=app.state.signaling_url,
                        help="membrane-rtc's websocket base URL (default %(default)s)")
    args = parser.parse_args()
    if len(os.environ.get(SECRET_VARIABLE, "").encode()) < 32:
        sys.exit(f"set {SECRET_VARIABLE} as for membrane-rtc serve (32 bytes at least)")
    app.state.signaling_url = args.signaling_url
    listening = socket.socket()
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listening.bind((args.host, args.port))
    listening.listen(128)  # from now on a browser's request waits for the app, never refused
    print(f"chat on http://{args.host}:{listening.getsockname()[1]}/ "
          f"(signaling: {args.signaling_url}/{ROOM})", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[listening])


if __name__ == "__main__":
    main()
