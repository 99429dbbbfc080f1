"""The official Bittensor SDK driving the chain as a miner and a validator would.

Each check names the SDK call and shows what the chain answered, and where the project's
@polkadot/api path reads the same data, the two views are compared. Tests run in file order:
registration comes before serving, committing and weights, which use the new uid. Fees are
checked through the SDK's own estimate (get_extrinsic_fee / get_transfer_fee): the fee a
receipt reports must equal it, and on the local chain a balance moves by exactly it.
"""

import time

import pytest

from conftest import read_with_polkadot

SPEC_VERSION = 393


def call(what, fn, *args, **kwargs):
    """Runs an SDK call; a failure says which call it was."""
    try:
        return fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - re-raised with the call's name
        raise AssertionError(f"{what} raised {type(e).__name__}: {e}") from e


def ok(what, resp):
    assert resp.success, f"{what} failed: {resp.message!r} (error: {resp.error!r})"
    return resp


def test_runtime_and_metadata(subtensor):
    rv = call(
        "state_getRuntimeVersion", subtensor.substrate.rpc_request, "state_getRuntimeVersion", []
    )["result"]["specVersion"]
    assert rv == SPEC_VERSION, f"runtime spec_version: chain answered {rv}"
    block = call("get_current_block", subtensor.get_current_block)
    assert block > 0, f"get_current_block: chain answered {block}"
    versions = call(
        "state_call Metadata_metadata_versions",
        subtensor.substrate.rpc_request, "state_call", ["Metadata_metadata_versions", "0x"],
    )["result"]
    assert versions == "0x0c0e0000000f00000010000000", f"Metadata_metadata_versions: chain answered {versions}"


def test_subnet_and_hyperparameters(subtensor, netuid):
    assert call("subnet_exists", subtensor.subnet_exists, netuid), "subnet_exists: chain answered False"
    netuids = call("get_all_subnets_netuid", subtensor.get_all_subnets_netuid)
    assert netuid in netuids, f"get_all_subnets_netuid: chain answered {netuids}"
    hp = call("get_subnet_hyperparameters", subtensor.get_subnet_hyperparameters, netuid)
    assert hp is not None and hp.tempo > 0, f"get_subnet_hyperparameters: chain answered {hp}"
    info = call("get_subnet_info", subtensor.get_subnet_info, netuid)
    assert info is not None and info.netuid == netuid, f"get_subnet_info: chain answered {info}"


def test_neurons_and_metagraph_match_polkadot(subtensor, endpoint, netuid):
    lite = call("neurons_lite", subtensor.neurons_lite, netuid)
    full = call("neurons", subtensor.neurons, netuid)
    mg = call("metagraph", subtensor.metagraph, netuid)
    pj = read_with_polkadot(endpoint, netuid)
    expected = [n["hotkey"] for n in pj["neurons"]]
    assert [n.hotkey for n in lite][: len(expected)] == expected, f"neurons_lite hotkeys: {[n.hotkey for n in lite]}"
    assert [n.hotkey for n in full][: len(expected)] == expected, f"neurons hotkeys: {[n.hotkey for n in full]}"
    assert list(mg.hotkeys)[: len(expected)] == expected, f"metagraph hotkeys: {list(mg.hotkeys)}"
    assert [n.uid for n in full] == list(range(len(full))), f"neurons uids: {[n.uid for n in full]}"


def test_balance_and_stake(subtensor, validator_wallet):
    bal = call("get_balance", subtensor.get_balance, validator_wallet.coldkeypub.ss58_address)
    assert bal.rao >= 0, f"get_balance: chain answered {bal}"
    stakes = call(
        "get_stake_info_for_coldkey", subtensor.get_stake_info_for_coldkey, validator_wallet.coldkeypub.ss58_address
    )
    assert isinstance(stakes, list), f"get_stake_info_for_coldkey: chain answered {stakes}"


def test_burned_register(subtensor, miner_wallet, netuid, local_chain):
    hot = miner_wallet.hotkey.ss58_address
    cold = miner_wallet.coldkeypub.ss58_address
    call_ = call(
        "compose_call burned_register", subtensor.compose_call,
        call_module="SubtensorModule", call_function="burned_register",
        call_params={"netuid": netuid, "hotkey": hot},
    )
    estimate = call("get_extrinsic_fee", subtensor.get_extrinsic_fee, call=call_, keypair=miner_wallet.coldkeypub)
    assert estimate.rao > 0, f"get_extrinsic_fee(burned_register): chain answered {estimate}"
    burn = call("recycle", subtensor.recycle, netuid)
    before = call("get_balance", subtensor.get_balance, cold)
    # period=None: an immortal extrinsic, as the estimate is, so both have the same length.
    resp = call(
        "burned_register", subtensor.burned_register, wallet=miner_wallet, netuid=netuid,
        mev_protection=False, period=None,
    )
    ok("burned_register", resp)
    assert resp.extrinsic_fee is not None and resp.extrinsic_fee.rao == estimate.rao, (
        f"burned_register paid {resp.extrinsic_fee} (TransactionFeePaid), get_extrinsic_fee said {estimate}"
    )
    if local_chain:
        after = call("get_balance", subtensor.get_balance, cold)
        assert before.rao - after.rao == burn.rao + estimate.rao, (
            f"coldkey balance fell by {before.rao - after.rao} rao, expected burn {burn.rao} + fee {estimate.rao}"
        )
    uid = call("get_uid_for_hotkey_on_subnet", subtensor.get_uid_for_hotkey_on_subnet, hot, netuid)
    assert uid is not None, "get_uid_for_hotkey_on_subnet: chain answered None after burned_register"
    assert call("is_hotkey_registered", subtensor.is_hotkey_registered, hot, netuid), "is_hotkey_registered: False"
    netuids = call("get_netuids_for_hotkey", subtensor.get_netuids_for_hotkey, hot)
    assert netuid in netuids, f"get_netuids_for_hotkey: chain answered {netuids}"


def test_serve_axon(subtensor, endpoint, miner_wallet, netuid):
    import bittensor as bt

    axon = bt.Axon(wallet=miner_wallet, ip="10.1.2.3", port=8091, external_ip="10.1.2.3", external_port=8091)
    ok("serve_axon", call("serve_axon", subtensor.serve_axon, netuid=netuid, axon=axon, mev_protection=False))
    uid = subtensor.get_uid_for_hotkey_on_subnet(miner_wallet.hotkey.ss58_address, netuid)
    n = call("neuron_for_uid", subtensor.neuron_for_uid, uid, netuid)
    assert (n.axon_info.ip, n.axon_info.port) == ("10.1.2.3", 8091), f"neuron_for_uid axon: {n.axon_info}"
    pj = read_with_polkadot(endpoint, netuid)["neurons"][uid]
    assert pj["axon"] and pj["axon"]["port"] == 8091, f"polkadot Axons: {pj['axon']}"


def test_commitment_set_and_get(subtensor, endpoint, miner_wallet, netuid):
    data = f"covenant-conformance-{miner_wallet.hotkey.ss58_address[:12]}"
    ok(
        "set_commitment",
        call("set_commitment", subtensor.set_commitment, wallet=miner_wallet, netuid=netuid, data=data,
             mev_protection=False),
    )
    uid = subtensor.get_uid_for_hotkey_on_subnet(miner_wallet.hotkey.ss58_address, netuid)
    got = call("get_commitment", subtensor.get_commitment, netuid, uid)
    assert got == data, f"get_commitment: chain answered {got!r}"
    everyone = call("get_all_commitments", subtensor.get_all_commitments, netuid)
    assert everyone.get(miner_wallet.hotkey.ss58_address) == data, f"get_all_commitments: {everyone}"
    pj = read_with_polkadot(endpoint, netuid)["neurons"][uid]
    assert pj["commitment"] == data, f"polkadot CommitmentOf: {pj['commitment']!r}"


def test_set_weights(subtensor, endpoint, validator_wallet, miner_wallet, netuid):
    vhot = validator_wallet.hotkey.ss58_address
    vuid = subtensor.get_uid_for_hotkey_on_subnet(vhot, netuid)
    assert vuid is not None, f"validator hotkey {vhot} is not registered on subnet {netuid}"
    muid = subtensor.get_uid_for_hotkey_on_subnet(miner_wallet.hotkey.ss58_address, netuid)
    # The weights rate limit counts blocks since the validator's last update.
    limit = subtensor.get_subnet_hyperparameters(netuid).weights_rate_limit
    deadline = time.monotonic() + 120
    while subtensor.blocks_since_last_update(netuid, vuid) <= limit and time.monotonic() < deadline:
        time.sleep(0.5)
    hot_balance = call("get_balance", subtensor.get_balance, vhot)
    resp = call(
        "set_weights", subtensor.set_weights, wallet=validator_wallet, netuid=netuid,
        uids=[muid], weights=[1.0], mev_protection=False, max_attempts=1,
    )
    ok("set_weights", resp)
    # set_weights is fee-free (Pays::No): the receipt reports 0 and the hotkey keeps its balance.
    assert resp.extrinsic_fee is not None and resp.extrinsic_fee.rao == 0, f"set_weights fee: {resp.extrinsic_fee}"
    assert call("get_balance", subtensor.get_balance, vhot).rao == hot_balance.rao, "set_weights cost the hotkey"
    pj = read_with_polkadot(endpoint, netuid)["neurons"][vuid]
    assert [muid, 65535] in pj["weights"], f"polkadot Weights of uid {vuid}: {pj['weights']}"
    n = call("neuron_for_uid", subtensor.neuron_for_uid, vuid, netuid)
    assert [muid, 65535] in [list(w) for w in n.weights], f"neuron_for_uid weights: {n.weights}"


def test_transfer_fee(subtensor, miner_wallet, local_chain):
    from bittensor.utils.balance import Balance
    from bittensor_wallet import Keypair

    dest = Keypair.create_from_uri(f"//conformance/{time.time_ns()}/dest").ss58_address
    amount = Balance.from_rao(1_000_000)
    fee = call(
        "get_transfer_fee", subtensor.get_transfer_fee, wallet=miner_wallet,
        destination_ss58=dest, amount=amount,
    )
    assert fee is not None and fee.rao > 0, f"get_transfer_fee: chain answered {fee}"
    before = call("get_balance", subtensor.get_balance, miner_wallet.coldkeypub.ss58_address)
    resp = call(
        "transfer", subtensor.transfer, wallet=miner_wallet, destination_ss58=dest, amount=amount,
        mev_protection=False, period=None, wait_for_inclusion=True,
    )
    ok("transfer", resp)
    assert resp.extrinsic_fee is not None and resp.extrinsic_fee.rao == fee.rao, (
        f"transfer paid {resp.extrinsic_fee}, get_transfer_fee said {fee}"
    )
    assert call("get_balance", subtensor.get_balance, dest).rao == amount.rao, "destination balance"
    if local_chain:
        after = call("get_balance", subtensor.get_balance, miner_wallet.coldkeypub.ss58_address)
        assert before.rao - after.rao == amount.rao + fee.rao, (
            f"sender balance fell by {before.rao - after.rao} rao, expected {amount.rao} + fee {fee.rao}"
        )


def test_commit_reveal_weights(subtensor, endpoint, validator_wallet, cr_netuid):
    """commit_weights then reveal_weights (commit_/reveal_mechanism_weights) on a commit-reveal subnet."""
    vhot = validator_wallet.hotkey.ss58_address
    assert call("commit_reveal_enabled", subtensor.commit_reveal_enabled, netuid=cr_netuid), (
        f"commit_reveal_enabled({cr_netuid}): chain answered False"
    )
    vuid = subtensor.get_uid_for_hotkey_on_subnet(vhot, cr_netuid)
    assert vuid is not None, f"validator hotkey {vhot} is not registered on subnet {cr_netuid}"
    target = 1 if vuid == 0 else 0
    uids, weights, salt = [target], [65535], [11, 22, 33]
    limit = subtensor.get_subnet_hyperparameters(cr_netuid).weights_rate_limit
    deadline = time.monotonic() + 120
    while subtensor.blocks_since_last_update(cr_netuid, vuid) <= limit and time.monotonic() < deadline:
        time.sleep(0.5)
    ok("commit_weights", call(
        "commit_weights", subtensor.commit_weights, wallet=validator_wallet, netuid=cr_netuid, salt=salt,
        uids=uids, weights=weights, mev_protection=False, max_attempts=1,
        wait_for_inclusion=True, wait_for_finalization=False,
    ))
    stored = call(
        "query WeightCommits", subtensor.substrate.query, "SubtensorModule", "WeightCommits", [cr_netuid, vhot],
    ).value
    assert stored, f"WeightCommits({cr_netuid}, {vhot}): chain answered {stored}"
    _, _, first_reveal, last_reveal = stored[-1]
    # A reveal that does not match the commit fails in the block with the runtime's error.
    bad = call(
        "reveal_weights", subtensor.reveal_weights, wallet=validator_wallet, netuid=cr_netuid, uids=uids,
        weights=weights, salt=[1], mev_protection=False, max_attempts=1,
        wait_for_inclusion=True, wait_for_finalization=False,
    )
    assert not bad.success and "InvalidRevealCommitHashNotMatch" in f"{bad.message} {bad.error}", (
        f"reveal_weights with the wrong salt: {bad.message!r} ({bad.error!r})"
    )
    deadline = time.monotonic() + 300
    while subtensor.get_current_block() + 1 < first_reveal and time.monotonic() < deadline:
        time.sleep(0.05)
    good = call(
        "reveal_weights", subtensor.reveal_weights, wallet=validator_wallet, netuid=cr_netuid, uids=uids,
        weights=weights, salt=salt, mev_protection=False, max_attempts=1,
        wait_for_inclusion=True, wait_for_finalization=False,
    )
    ok(f"reveal_weights (reveal blocks {first_reveal}..{last_reveal})", good)
    assert good.extrinsic_fee is not None and good.extrinsic_fee.rao == 0, f"reveal fee: {good.extrinsic_fee}"
    n = call("neuron_for_uid", subtensor.neuron_for_uid, vuid, cr_netuid)
    assert [target, 65535] in [list(w) for w in n.weights], f"neuron_for_uid weights: {n.weights}"
    pj = read_with_polkadot(endpoint, cr_netuid)["neurons"][vuid]
    assert [target, 65535] in pj["weights"], f"polkadot Weights of uid {vuid}: {pj['weights']}"


@pytest.mark.parametrize(
    "method", ["chain_getHead", "state_getStorageAt", "account_nextIndex", "rpc_methods", "payment_queryInfo"],
)
def test_node_rpc_surface(subtensor, validator_wallet, netuid, method):
    params = {
        "chain_getHead": [],
        "state_getStorageAt": ["0x26aa394eea5630e07c48ae0c9558cef702a5c1b19ab7a04f536c519aca4983ac"],
        "account_nextIndex": [validator_wallet.coldkeypub.ss58_address],
        "rpc_methods": [],
        "payment_queryInfo": [],
    }[method]
    if method == "payment_queryInfo":
        tx = subtensor.substrate.create_signed_extrinsic(
            call=subtensor.compose_call("SubtensorModule", "burned_register",
                                        {"netuid": netuid, "hotkey": validator_wallet.hotkey.ss58_address}),
            keypair=validator_wallet.coldkey,
        )
        params = [str(tx.data)]
    r = call(method, subtensor.substrate.rpc_request, method, params)
    assert "error" not in r, f"{method}: chain answered {r}"
