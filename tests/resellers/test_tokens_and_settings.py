import subprocess
import threading

import pytest
from django.db import connection

from core.tokens import TokenState, token_consume, token_digest, token_new
from resellers.models import TeamInvitation
from tests.factories import TeamInvitationFactory
from tests.support.production_settings import PRODUCTION_ENV, production_run


def test_token_is_32_random_bytes_and_only_its_digest_is_kept():
    raw, digest = token_new()
    assert len(raw) == 43  # base64 of 32 bytes, unpadded
    assert digest == token_digest(raw) and raw not in digest
    assert token_new()[0] != raw


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_parallel_consumes_of_one_token_let_exactly_one_through():
    invitation, _ = TeamInvitationFactory.create_with_token()
    barrier = threading.Barrier(20)
    results: list[bool] = []
    lock = threading.Lock()

    def accept() -> None:
        try:
            barrier.wait()
            won = token_consume(TeamInvitation.objects.all(), pk=invitation.pk)
            with lock:
                results.append(won)
        finally:
            connection.close()

    threads = [threading.Thread(target=accept) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 19 + [True]
    invitation.refresh_from_db()
    assert invitation.state == TokenState.USED


def test_expired_token_is_not_consumed(db):
    from datetime import timedelta

    from django.utils import timezone

    invitation, _ = TeamInvitationFactory.create_with_token(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert invitation.state == TokenState.EXPIRED
    assert token_consume(TeamInvitation.objects.all(), pk=invitation.pk) is False


def _import_production(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return production_run("import config.settings.production", env)


def test_production_settings_load_with_their_secrets():
    result = _import_production(PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", sorted(PRODUCTION_ENV))
def test_production_refuses_to_start_without_a_secret(missing):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
    result = _import_production(env)
    assert result.returncode != 0
    assert missing in result.stderr
