"""Fixtures of the SDK conformance suite.

The suite talks to COVENANT_CHAIN_ENDPOINT when it is set (any subtensor node: the keys it
signs with then come from COVENANT_CHAIN_COLDKEY_URI and COVENANT_CHAIN_VALIDATOR_URI and must
be funded / hold a validator permit there). Otherwise it starts the project's local chain
with `node --import tsx e2e/chain/main.ts` on a free port and stops it afterwards. Only the
public JSON-RPC is used: no covenantTest_ method, so a pass here means a real client works.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NETUID = int(os.environ.get("COVENANT_CHAIN_NETUID", "3"))
# A subnet with commit-reveal of weights on; against an endpoint, only when one is named.
CR_NETUID = os.environ.get("COVENANT_CHAIN_CR_NETUID")
LOCAL_CR_NETUID = 4
# Fast blocks keep the weights rate limit (100 blocks, as in production) to a few seconds.
BLOCK_TIME_MS = 50
# Epochs of the local commit-reveal subnet: long enough (2 s) to land a reveal inside one.
LOCAL_CR_TEMPO = 40


def _start_local_chain():
    cmd = [
        "node", "--import", "tsx", "e2e/chain/main.ts",
        "--netuid", str(NETUID), "--neurons", "4", "--validators", "1",
        "--block-time-ms", str(BLOCK_TIME_MS), "--port", "0",
        "--commit-reveal-netuid", str(LOCAL_CR_NETUID), "--commit-reveal-tempo", str(LOCAL_CR_TEMPO),
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
    deadline = time.monotonic() + 120
    line = proc.stdout.readline().strip()
    if not line.startswith("ws://") or time.monotonic() > deadline:
        proc.kill()
        raise RuntimeError(f"local chain did not start: {line!r}")
    return proc, line


@pytest.fixture(scope="session")
def endpoint():
    given = os.environ.get("COVENANT_CHAIN_ENDPOINT")
    if given:
        yield given
        return
    proc, url = _start_local_chain()
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="session")
def netuid():
    return NETUID


@pytest.fixture(scope="session")
def local_chain():
    """True when the suite runs against the local chain it started (balances are then exact)."""
    return not os.environ.get("COVENANT_CHAIN_ENDPOINT")


@pytest.fixture(scope="session")
def cr_netuid(local_chain):
    """The commit-reveal subnet: the local chain's second subnet, or COVENANT_CHAIN_CR_NETUID."""
    if local_chain:
        return LOCAL_CR_NETUID
    if CR_NETUID is None:
        pytest.skip("COVENANT_CHAIN_CR_NETUID is not set: no commit-reveal subnet to use")
    return int(CR_NETUID)


@pytest.fixture(scope="session")
def subtensor(endpoint):
    import bittensor as bt

    st = bt.Subtensor(endpoint)
    yield st
    st.close()


def _wallet(tmp: Path, name: str, cold_uri: str, hot_uri: str):
    from bittensor_wallet import Keypair, Wallet

    w = Wallet(name=name, hotkey="default", path=str(tmp))
    w.set_coldkey(Keypair.create_from_uri(cold_uri), encrypt=False, overwrite=True)
    w.set_coldkeypub(Keypair.create_from_uri(cold_uri), overwrite=True)
    w.set_hotkey(Keypair.create_from_uri(hot_uri), encrypt=False, overwrite=True)
    return w


@pytest.fixture(scope="session")
def miner_wallet(tmp_path_factory):
    """A fresh hotkey paid for by a funded coldkey (//Alice on the local chain)."""
    cold = os.environ.get("COVENANT_CHAIN_COLDKEY_URI", "//Alice")
    hot = f"//conformance/{os.getpid()}/{time.time_ns()}/hot"
    return _wallet(tmp_path_factory.mktemp("wallets"), "miner", cold, hot)


@pytest.fixture(scope="session")
def validator_wallet(tmp_path_factory):
    """A registered hotkey with a validator permit: the local chain's first genesis neuron."""
    hot = os.environ.get("COVENANT_CHAIN_VALIDATOR_URI", "//covenant/0/hot")
    cold = os.environ.get("COVENANT_CHAIN_VALIDATOR_COLDKEY_URI", "//covenant/0/cold")
    return _wallet(tmp_path_factory.mktemp("wallets"), "validator", cold, hot)


def read_with_polkadot(endpoint: str, netuid: int) -> dict:
    """The same chain read through the project's @polkadot/api path (e2e/chain/read-chain.ts)."""
    import json

    out = subprocess.run(
        ["node", "--import", "tsx", "e2e/chain/read-chain.ts", endpoint, str(netuid)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    if out.returncode != 0:
        raise AssertionError(f"read-chain.ts failed ({out.returncode}): {out.stderr[-2000:]}")
    return json.loads(out.stdout)
