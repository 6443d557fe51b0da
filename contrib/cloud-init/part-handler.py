#!/usr/bin/env python3
# Commissaire cloud-init part handler.
#
# This program is free software; you can redistribute it and/or
# modify it under the terms of the GNU Library General Public
# License as published by the Free Software Foundation; either
# version 2 of the License, or (at your option) any later version.
"""
cloud-init part handler that registers the booting host with Commissaire.

`commctl user-data` embeds this file as a ``text/part-handler`` part,
followed by a ``text/x-commissaire-host`` part holding JSON such as::

    {"endpoint": "https://commissaire.example.com:8000",
     "username": "a", "password": "a", "cluster": "mycluster",
     "remote_user": "root", "ssh_key_path": "/root/.ssh/id_rsa",
     "authorized_keys_path": "/root/.ssh/authorized_keys"}

Only ``endpoint`` is required. For that part the handler:

1. creates an SSH key pair at ``ssh_key_path`` (default /root/.ssh/id_rsa)
   with ssh-keygen unless the private key already exists;
2. appends the public key to ``authorized_keys_path`` (default
   /root/.ssh/authorized_keys) unless it is already there;
3. PUTs ``ENDPOINT/api/v0/host`` (the server takes the address the request
   comes from) with ``{"ssh_priv_key": <base64 private key>, "remote_user":
   ..., "cluster": ...}``, with HTTP Basic authentication when a username is
   given. Connection errors are retried a few times (the server may still be
   starting); HTTP errors are not.

Standard library only. For testing it also runs on its own::

    python3 part-handler.py PAYLOAD_FILE
"""

import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

HOST_CONTENT_TYPE = "text/x-commissaire-host"
DEFAULT_SSH_KEY_PATH = "/root/.ssh/id_rsa"
DEFAULT_AUTHORIZED_KEYS_PATH = "/root/.ssh/authorized_keys"
CONNECT_ATTEMPTS = 5
RETRY_DELAY_SECONDS = 5
REQUEST_TIMEOUT_SECONDS = 60


class RegistrationError(Exception):
    """The host could not be registered."""


def log(message):
    """Writes a line to stderr (cloud-init collects it in its output log)."""
    sys.stderr.write("commissaire part-handler: {0}\n".format(message))
    sys.stderr.flush()


def list_types():
    """The content types this handler handles (cloud-init API)."""
    return [HOST_CONTENT_TYPE]


def ensure_key_pair(key_path):
    """Creates an SSH key pair at key_path unless the private key exists.

    Returns the public key line.
    """
    key_dir = os.path.dirname(key_path)
    if key_dir and not os.path.isdir(key_dir):
        os.makedirs(key_dir, mode=0o700)
    if not os.path.exists(key_path):
        log("generating an SSH key pair at {0}".format(key_path))
        subprocess.check_call(
            ["ssh-keygen", "-q", "-t", "rsa", "-b", "3072", "-N", "",
             "-C", "commissaire", "-f", key_path],
            stdin=subprocess.DEVNULL)
    os.chmod(key_path, 0o600)
    pub_path = key_path + ".pub"
    if os.path.exists(pub_path):
        with open(pub_path) as f:
            public = f.read().strip()
    else:
        public = subprocess.check_output(
            ["ssh-keygen", "-y", "-f", key_path],
            stdin=subprocess.DEVNULL).decode("ascii").strip()
        with open(pub_path, "w") as f:
            f.write(public + "\n")
    if not public:
        raise RegistrationError("no public key for {0}".format(key_path))
    return public


def authorize_key(public_key, authorized_keys_path):
    """Appends public_key to authorized_keys_path unless it is present."""
    keys_dir = os.path.dirname(authorized_keys_path)
    if keys_dir and not os.path.isdir(keys_dir):
        os.makedirs(keys_dir, mode=0o700)
    # Compare the key type and data, not the comment.
    wanted = " ".join(public_key.split()[:2])
    existing = ""
    if os.path.exists(authorized_keys_path):
        with open(authorized_keys_path) as f:
            existing = f.read()
    for line in existing.splitlines():
        fields = line.split()
        for i in range(len(fields) - 1):
            if " ".join(fields[i:i + 2]) == wanted:
                return False
    with open(authorized_keys_path, "a") as f:
        if existing and not existing.endswith("\n"):
            f.write("\n")
        f.write(public_key + "\n")
    os.chmod(authorized_keys_path, 0o600)
    return True


def registration_body(config, private_key):
    """The JSON body of the registration request (only given keys)."""
    body = {"ssh_priv_key": base64.b64encode(private_key).decode("ascii")}
    for key in ("remote_user", "cluster"):
        if config.get(key):
            body[key] = config[key]
    return body


def register(config, private_key):
    """PUTs the host to ENDPOINT/api/v0/host; returns the server's JSON."""
    url = config["endpoint"].rstrip("/") + "/api/v0/host"
    data = json.dumps(registration_body(config, private_key)).encode("utf-8")
    headers = {"Content-Type": "application/json",
               "Accept": "application/json"}
    if config.get("username"):
        pair = "{0}:{1}".format(config["username"], config.get("password", ""))
        headers["Authorization"] = "Basic " + base64.b64encode(
            pair.encode("utf-8")).decode("ascii")
    last_error = None
    for attempt in range(1, CONNECT_ATTEMPTS + 1):
        request = urllib.request.Request(
            url, data=data, headers=headers, method="PUT")
        try:
            with urllib.request.urlopen(
                    request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
                text = response.read().decode("utf-8", "replace")
                log("registered with {0} ({1})".format(url, response.status))
                return json.loads(text) if text.strip() else None
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace").strip()
            try:
                detail = json.loads(detail).get("error", detail)
            except (ValueError, AttributeError):
                pass
            raise RegistrationError("{0} answered {1}: {2}".format(
                url, error.code, detail))
        except (urllib.error.URLError, OSError) as error:
            last_error = error
            if attempt < CONNECT_ATTEMPTS:
                log("cannot reach {0} ({1}); retrying in {2} s".format(
                    url, getattr(error, "reason", error), RETRY_DELAY_SECONDS))
                time.sleep(RETRY_DELAY_SECONDS)
    raise RegistrationError("cannot reach {0}: {1}".format(
        url, getattr(last_error, "reason", last_error)))


def handle_host(payload):
    """Handles a text/x-commissaire-host payload (JSON text)."""
    if isinstance(payload, bytes):
        payload = payload.decode("utf-8")
    config = json.loads(payload)
    if not isinstance(config, dict) or not config.get("endpoint"):
        raise RegistrationError("the payload needs an 'endpoint'")
    key_path = config.get("ssh_key_path") or DEFAULT_SSH_KEY_PATH
    keys_path = (config.get("authorized_keys_path") or
                 DEFAULT_AUTHORIZED_KEYS_PATH)
    public_key = ensure_key_pair(key_path)
    if authorize_key(public_key, keys_path):
        log("added the public key to {0}".format(keys_path))
    with open(key_path, "rb") as f:
        private_key = f.read()
    return register(config, private_key)


def handle_part(data, ctype, filename, payload):
    """cloud-init entry point; ignores __begin__/__end__ and other types."""
    if ctype in ("__begin__", "__end__"):
        return
    if ctype != HOST_CONTENT_TYPE:
        return
    handle_host(payload)


def main(argv):
    """Runs the handler on a payload file: part-handler.py PAYLOAD_FILE."""
    if len(argv) != 2:
        sys.stderr.write("usage: {0} PAYLOAD_FILE\n".format(argv[0]))
        return 2
    with open(argv[1]) as f:
        payload = f.read()
    try:
        handle_part(None, HOST_CONTENT_TYPE, os.path.basename(argv[1]),
                    payload)
    except (RegistrationError, ValueError, OSError,
            subprocess.CalledProcessError) as error:
        log("error: {0}".format(error))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
