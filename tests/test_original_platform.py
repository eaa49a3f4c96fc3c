"""Platform XML written by the original HDeepRM (0.3.x): recognised, refused without a hierarchy
(its cores start in p-state 3 at 0.001 flop/s), read with one exactly as the platform JSON it
came from; every other XML (recorded Batsim platforms, hdeeprm's own exports) read as before."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hdeeprm.backends.batsim.export import platform_xml
from hdeeprm.cli.main import main as hdeeprm_main
from hdeeprm.common.errors import PlatformError
from hdeeprm.inputs.platform import (
    bundled_platform,
    load_platform,
    load_xml_platform,
    read_platform_description,
    write_hierarchy,
)

TESTS = Path(__file__).parent
WORKLOAD = TESTS.parent / "hdeeprm" / "data" / "learning_workload.json"
#: The spec's worked example (platform_examples/learning.json, section 1.7): per core, its
#: node, GFLOPS and W (processor 0: 2 cores of 4.0 GFLOPS, 40 W; processor 1: 4.4 GFLOPS, 50 W).
LEARNING_CORES = [(0, 4.0, 40.0), (0, 4.0, 40.0), (0, 4.4, 50.0), (0, 4.4, 50.0)]


def original_xml(path: Path, cores=LEARNING_CORES, *, pstate: str = "3", idle: str = "0.001f",
                 prop: str = "watt_per_state", name: str = "cor_{k}", master: bool = True) -> Path:
    """A platform.xml as the original HDeepRM's generator writes it (spec 1.6), one cluster."""
    hosts, routes, nodes = [], [], []
    for k, (node, g, w) in enumerate(cores):
        if node not in nodes:
            nodes.append(node)
            hosts.append(f'      <link id="udl_{node}" sharing_policy="SPLITDUPLEX" bandwidth="10.0Gbps" '
                         'latency="0us"/>')
        host = name.format(k=k)
        watts = ", ".join(f"{x:.3f}:{x:.3f}" for x in (w, w, 0.25 * w, 0.05 * w))
        hosts.append(f'      <host id="{host}" pstate="{pstate}" speed="{g:.3f}Gf, {0.75 * g:.3f}Gf, {idle}, '
                     f'{idle}">\n        <prop id="{prop}" value="{watts}"/>\n      </host>')
        routes.append(f'      <route src="rou_0" dst="{host}" symmetrical="NO"><link_ctn id="udl_{node}" '
                      'direction="DOWN"/></route>')
        routes.append(f'      <route src="{host}" dst="rou_0" symmetrical="NO"><link_ctn id="udl_{node}" '
                      'direction="UP"/></route>')
    master_zone = ('    <zone id="master" routing="None">\n      <host id="master_host" speed="1Gf">\n'
                   '        <prop id="watt_per_state" value="0.0:0.0"/>\n      </host>\n    </zone>\n'
                   if master else "")
    text = ("<?xml version='1.0' encoding='UTF-8'?>\n"
            '<!DOCTYPE platform SYSTEM "https://simgrid.org/simgrid.dtd">\n'
            '<platform version="4.1">\n  <zone id="main" routing="Full">\n' + master_zone +
            '    <zone id="clu_0" routing="Full">\n      <router id="rou_0"/>\n' + "\n".join(hosts + routes) +
            '\n    </zone>\n    <link id="glob_lnk_0" sharing_policy="SPLITDUPLEX" bandwidth="10.0Gbps" '
            'latency="0us"/>\n'
            '    <zoneRoute src="master" dst="clu_0" gw_src="master_host" gw_dst="rou_0" symmetrical="NO">'
            '<link_ctn id="glob_lnk_0" direction="DOWN"/></zoneRoute>\n'
            '    <zoneRoute src="clu_0" dst="master" gw_src="rou_0" gw_dst="master_host" symmetrical="NO">'
            '<link_ctn id="glob_lnk_0" direction="UP"/></zoneRoute>\n'
            "  </zone>\n</platform>\n")
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def learning_hierarchy(tmp_path) -> Path:
    """hierarchy.json of the bundled learning platform (the JSON the original XML came from)."""
    path = tmp_path / "hierarchy.json"
    write_hierarchy(load_platform("learning"), path)
    return path


def test_the_fixture_is_the_spec_worked_example(tmp_path):
    text = original_xml(tmp_path / "platform.xml").read_text()
    assert 'id="cor_2" pstate="3" speed="4.400Gf, 3.300Gf, 0.001f, 0.001f"' in text
    assert 'value="50.000:50.000, 50.000:50.000, 12.500:12.500, 2.500:2.500"' in text
    platform = load_xml_platform(tmp_path / "platform.xml")  # the reader itself still reads it, flat
    assert platform.host_names == ("cor_0", "cor_1", "cor_2", "cor_3")
    assert platform.initial_pstate.tolist() == [3, 3, 3, 3]
    assert platform.speeds[:, 3].tolist() == [0.001] * 4


def test_original_xml_without_hierarchy_is_refused_in_one_line(tmp_path):
    path = original_xml(tmp_path / "platform.xml")
    with pytest.raises(PlatformError) as info:
        load_platform(path)
    message = str(info.value)
    assert "\n" not in message and info.value.source == str(path)
    for said in ("original HDeepRM platform XML", "p-state 3", "0.001 flop/s", "--platform", "platform.json",
                 "--hierarchy", "hierarchy.json"):
        assert said in message, said
    with pytest.raises(PlatformError, match="original HDeepRM"):
        load_xml_platform(path, refuse_original=True)


def test_simulate_refuses_it_with_status_2_and_writes_nothing(tmp_path, capsys):
    path = original_xml(tmp_path / "platform.xml")
    out = tmp_path / "run"
    assert hdeeprm_main(["simulate", "--platform", str(path), "--workload", str(WORKLOAD),
                         "--policy", "first:first_fit", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hdeeprm simulate: error: ")
    assert "original HDeepRM platform XML" in err
    assert not (out / "out_jobs.csv").exists()


def test_with_its_hierarchy_it_runs_as_the_platform_json_it_came_from(tmp_path, learning_hierarchy, capsys):
    path = original_xml(tmp_path / "platform.xml")
    platform = load_platform(path, learning_hierarchy)
    compiled = load_platform("learning")
    assert platform.host_names == compiled.host_names
    for name in ("speeds", "watts_idle", "watts_full", "initial_pstate"):
        assert np.array_equal(getattr(platform, name), getattr(compiled, name)), name
    # Cores start in p-state 3, as Batsim starts them (the XML's pstate attribute; the recorded
    # real-Batsim run A9 on such a platform begins with "0,0-15,3"): the hierarchy's p-state
    # rules move them to P0 when a job starts.
    assert platform.initial_pstate.tolist() == [3, 3, 3, 3]
    for args, out in (([str(path), "--hierarchy", str(learning_hierarchy)], "xml"), (["learning"], "json")):
        assert hdeeprm_main(["simulate", "--platform", *args, "--workload", str(WORKLOAD),
                             "--policy", "first:high_mem_bw", "--out", str(tmp_path / out)]) == 0
    capsys.readouterr()
    for name in ("out_jobs.csv", "out_schedule.csv", "out_pstate_changes.csv", "out_consumed_energy.csv"):
        assert (tmp_path / "xml" / name).read_bytes() == (tmp_path / "json" / name).read_bytes(), name
    schedule = (tmp_path / "xml" / "out_schedule.csv").read_text().splitlines()
    makespan = float(dict(zip(schedule[0].split(","), schedule[1].split(",")))["makespan"])
    assert 0 < makespan < 100  # not 2.1e13 s at 0.001 flop/s
    assert (tmp_path / "xml" / "out_pstate_changes.csv").read_text().splitlines()[1] == "0,0-3,3"


def _xml_files() -> list[Path]:
    return sorted(TESTS.joinpath("data").rglob("*.xml"))


@pytest.mark.parametrize("path", _xml_files(), ids=lambda p: str(p.relative_to(TESTS / "data")))
def test_every_platform_xml_of_the_tests_reads_as_before(path):
    """Recorded Batsim platforms and test platforms: none is refused, except the one written as
    the original HDeepRM writes them; all read with their hierarchy.json when they have one."""
    flat = load_xml_platform(path)
    if path.name == "learning_hdeeprm.xml":  # the original's layout, kept as test data
        with pytest.raises(PlatformError, match="original HDeepRM"):
            load_platform(path)
    else:
        loaded = load_platform(path)
        assert loaded.host_names == flat.host_names
        assert np.array_equal(loaded.speeds, flat.speeds, equal_nan=True)
    if (path.parent / "hierarchy.json").is_file():
        assert load_platform(path, path.parent / "hierarchy.json").hierarchy is not None


def test_the_test_data_holds_platforms_of_every_kind():
    names = {p.parent.name if p.name == "platform.xml" else p.name for p in _xml_files()}
    assert {"A1-delay-walltime", "A7-fcfs-sdsc-sp2", "A9-hdeeprm-xml-pstate3", "small_platform.xml",
            "learning_hdeeprm.xml"} <= names


@pytest.mark.parametrize("network", ["zero-latency", "links"])
def test_hdeeprm_own_exports_are_read_flat_as_batsim_reads_them(tmp_path, network):
    """crossval's Batsim folder (cor_<k> hosts in p-state 3, no hierarchy.json) is replayed, the
    transcript carrying the p-state changes: it must not be taken for the original's."""
    compiled = load_platform("learning")
    description = read_platform_description(bundled_platform("learning")) if network == "links" else None
    path = tmp_path / "platform.xml"
    path.write_bytes(platform_xml(compiled, network, description))
    platform = load_platform(path)
    assert platform.host_names == compiled.host_names and platform.initial_pstate.tolist() == [3] * 4


@pytest.mark.parametrize("change, refused", [
    ({}, True),
    ({"cores": [(k // 4, 4.0 + (k % 2), 40.0) for k in range(12)]}, True),  # cor_10 sorts before cor_2
    ({"pstate": "0"}, False),  # starts at full speed: an ordinary platform
    ({"idle": "1f"}, False),
    ({"prop": "wattage_per_state"}, False),  # hdeeprm's own exports
    ({"name": "node_{k}"}, False),
    ({"master": False}, False),
])
def test_the_signature_is_specific(tmp_path, change, refused):
    path = original_xml(tmp_path / "platform.xml", **change)
    if refused:
        with pytest.raises(PlatformError, match="original HDeepRM"):
            load_platform(path)
    else:
        assert load_platform(path).nb_machines == len(change.get("cores", LEARNING_CORES))


def test_a_hierarchy_for_other_hosts_is_still_refused_in_one_line(tmp_path):
    path = original_xml(tmp_path / "platform.xml")
    hierarchy = tmp_path / "hierarchy.json"
    write_hierarchy(load_platform("learning"), hierarchy)
    data = json.loads(hierarchy.read_text())
    data["nodes"][0]["processors"][0]["hosts"][0] = "cor_9"
    hierarchy.write_text(json.dumps(data))
    with pytest.raises(PlatformError, match="cor_9") as info:
        load_platform(path, hierarchy)
    assert "\n" not in str(info.value)
