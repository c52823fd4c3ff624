"""The production settings: `check --deploy` is clean, and gunicorn serves them on
PostgreSQL and Redis with HTTPS-only cookies, HSTS and a CSP."""

import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("CLOSELOOP_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def production_env(**extra) -> dict:
    env = {
        **os.environ,
        "CLOSELOOP_DEBUG": "false",
        "CLOSELOOP_SECRET_KEY": secrets.token_urlsafe(64),
        "CLOSELOOP_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CLOSELOOP_CSRF_TRUSTED_ORIGINS": "https://127.0.0.1",
        **extra,
    }
    # Test-only switches must not leak into the "deployment" under test.
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


def test_check_deploy_is_clean_with_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    env = production_env()
    env.pop("CLOSELOOP_SECRET_KEY")
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "CLOSELOOP_SECRET_KEY is required" in result.stderr


def _redis_available() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping())
    except Exception:  # noqa: BLE001 - any failure means "not here"
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - local server

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=5) as response:  # noqa: S310 - local test server
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_gunicorn_serves_production_settings_on_postgresql_and_redis(tmp_path):
    if not _redis_available():
        if os.environ.get("CI"):
            pytest.fail(f"Redis is required in CI at {REDIS_URL}")
        pytest.skip(f"no Redis at {REDIS_URL}")
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    static_root = tmp_path / "static"
    env = production_env(
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        CLOSELOOP_STATIC_ROOT=str(static_root),
        CLOSELOOP_BEHIND_PROXY="true",
    )
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
    )
    port = _free_port()
    server = subprocess.Popen(  # noqa: S603 - fixed command line
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "config/gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "config.wsgi",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    https = {"X-Forwarded-Proto": "https"}
    try:
        for _ in range(100):
            try:
                status, _, _ = _get(f"{base}/accounts/login/", https)
                break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("gunicorn did not start")

        # Plain HTTP is redirected to HTTPS.
        status, headers, _ = _get(f"{base}/accounts/login/")
        assert status == 301 and headers["Location"].startswith("https://")

        status, headers, body = _get(f"{base}/accounts/login/", https)
        assert status == 200
        assert "max-age=31536000" in headers["Strict-Transport-Security"]
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert "Secure" in headers["Set-Cookie"] and "HttpOnly" in headers["Set-Cookie"]
        # Hashed by the manifest storage, e.g. css/app.0123456789ab.css.
        css = re.search(r'href="/static/(css/app\.[0-9a-f]{12}\.css)"', body.decode()).group(1)
        status, headers, _ = _get(f"{base}/static/{css}", https)
        assert status == 200 and "max-age" in headers["Cache-Control"]

        # The public status page's rate limit counts in Redis (shared by every node).
        status, _, _ = _get(f"{base}/status/?number=TS1-1&phone_last4=1234", https)
        assert status == 200
        assert redis.Redis.from_url(REDIS_URL).dbsize() > 0

        status, _, _ = _get(f"{base}/api/docs/", https)
        assert status == 200
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0].decode(errors="replace")
    assert "Traceback" not in output, output
