"""Platform loading: type libraries, HDeepRM platform JSON, SimGrid XML, hierarchy files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hdeeprm.common.errors import HDeepRMError, PlatformError
from hdeeprm.inputs.platform import (
    Platform,
    attach_hierarchy,
    bundled_platform,
    default_type_library,
    load_json_platform,
    load_platform,
    load_type_library,
    load_xml_platform,
    read_hierarchy_file,
    read_platform_description,
    resolve_platform_name,
    write_hierarchy,
)

DATA = Path(__file__).parent / "data" / "platforms"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def write_json(tmp_path: Path, name: str, data) -> Path:
    return write(tmp_path, name, json.dumps(data))


def learning_dict() -> dict:
    return json.loads(bundled_platform("learning").read_text())


# ---------------------------------------------------------------------------------------------
# Bundled example platforms
# ---------------------------------------------------------------------------------------------

# name: clusters, nodes, processors, cores, reference speed (GFLOP/s), tolerance
BUNDLED = {
    "das2": (1, 72, 72, 144, 1.0, 1e-12),
    "gaia": (1, 153, 342, 2280, 11.715, 5e-4),
    "learning": (1, 1, 2, 4, 4.2, 1e-12),
    "mc2": (32, 641, 1548, 10002, 16.422, 5e-4),
    "pik": (1, 320, 640, 2560, 12.0, 1e-12),
    "ricc": (1, 1024, 2048, 8192, 11.72, 1e-12),
}


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_platform_counts_and_reference_speed(name):
    clusters, nodes, procs, cores, ref, tol = BUNDLED[name]
    platform = load_json_platform(bundled_platform(name))
    h = platform.hierarchy
    assert platform.nb_machines == cores
    assert (h.nb_cores, h.nb_processors, h.nb_nodes) == (cores, procs, nodes)
    assert len(np.unique(h.node_cluster)) == clusters
    assert h.reference_speed_gflops == pytest.approx(ref, abs=tol)
    # Reference speed is the core-weighted mean of the per-core peak speeds.
    per_core = h.processor_gflops_per_core[h.core_processor]
    assert h.reference_speed_gflops == pytest.approx(per_core.mean(), rel=1e-12)
    assert np.array_equal(platform.speeds[:, 0], per_core * 1e9)
    assert np.all(platform.nb_pstates == 4)
    assert np.all(platform.initial_pstate == 3)


@pytest.mark.parametrize("name, first, last", [
    ("learning", "cor_0", "cor_3"),
    ("das2", "cor_000", "cor_143"),
    ("gaia", "cor_0000", "cor_2279"),
    ("mc2", "cor_00000", "cor_10001"),
])
def test_host_names_are_padded_so_name_order_is_id_order(name, first, last):
    names = load_json_platform(bundled_platform(name)).host_names
    assert names[0] == first and names[-1] == last
    assert list(names) == sorted(names)
    assert len(set(names)) == len(names)


def test_learning_platform_matches_worked_example():
    platform = load_json_platform(bundled_platform("learning"))
    assert platform.host_names == ("cor_0", "cor_1", "cor_2", "cor_3")
    assert platform.speeds.tolist() == [
        [4.0e9, 3.0e9, 0.001, 0.001],
        [4.0e9, 3.0e9, 0.001, 0.001],
        [4.4e9, 3.3e9, 0.001, 0.001],
        [4.4e9, 3.3e9, 0.001, 0.001],
    ]
    expected_watts = [[40, 40, 10, 2], [40, 40, 10, 2], [50, 50, 12.5, 2.5], [50, 50, 12.5, 2.5]]
    assert platform.watts_idle.tolist() == expected_watts
    assert platform.watts_full.tolist() == expected_watts
    h = platform.hierarchy
    assert h.core_processor.tolist() == [0, 0, 1, 1]
    assert h.core_node.tolist() == [0, 0, 0, 0]
    assert h.processor_type == ("Test0_0", "Test0_1")
    assert h.processor_gflops_per_core.tolist() == [4.0, 4.4]
    assert h.processor_watts_per_core.tolist() == [40.0, 50.0]
    assert h.processor_mem_bw_gbs.tolist() == [32.0, 32.0]
    assert h.node_memory_mb.tolist() == [32000.0]
    assert h.node_type == ("Test0",)
    assert h.reference_speed_gflops == pytest.approx(4.2, rel=1e-15)


def test_gaia_nodes_follow_file_order():
    h = load_json_platform(bundled_platform("gaia")).hierarchy
    # Appendix C order: 60 x B500-0, 2 x B505-0, 10 x B505-1, S6030, R820, 5 x R720, ...
    assert h.node_type[:60] == ("Bullx B500-0",) * 60
    assert h.node_type[60:62] == ("Bullx B505-0",) * 2
    assert h.node_type[72] == "Bullx S6030"
    assert h.node_type[-1] == "SGI UV-2000"
    assert h.processor_type[0] == "Xeon L5640"
    assert h.processor_type[-1] == "Xeon E5-4650 v2"
    assert h.node_memory_mb[0] == 48000 and h.node_memory_mb[-1] == 4096000
    # The S6030 node has 16 ten-core processors: 160 cores on node 72.
    assert np.count_nonzero(h.core_node == 72) == 160


def test_mc2_clusters_are_numbered_depth_first():
    h = load_json_platform(bundled_platform("mc2")).hierarchy
    assert np.all(np.diff(h.node_cluster) >= 0)
    assert np.all(np.diff(h.core_node) >= 0) and np.all(np.diff(h.core_processor) >= 0)
    assert h.node_cluster[0] == 0 and h.node_cluster[-1] == 31
    assert h.node_type[0] == "Ajax Node" and np.count_nonzero(h.node_cluster == 0) == 1
    assert np.count_nonzero(h.node_cluster == 1) == 12  # alela


def test_global_counters_across_clusters_and_node_types():
    platform = load_json_platform(DATA / "two_clusters.json")
    h = platform.hierarchy
    assert platform.host_names == tuple(f"cor_{k:02d}" for k in range(12))
    assert h.processor_type == ("Test0_0", "Test0_1", "Test0_0", "Test0_1", "Pentium III",
                                "Example")
    assert h.processor_node.tolist() == [0, 0, 1, 1, 2, 3]
    assert h.core_processor.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert h.core_node.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3]
    assert h.node_cluster.tolist() == [0, 0, 0, 1]
    assert h.node_type == ("Test0", "Test0", "DAS2-fs0", "Example")
    assert h.node_memory_mb.tolist() == [32000, 32000, 1000, 16000]
    assert h.reference_speed_gflops == pytest.approx((4 * 4 + 4 * 4.4 + 2 * 1 + 2 * 10) / 12)
    assert platform.watts_full[8].tolist() == pytest.approx([14.5, 14.5, 3.625, 0.725],
                                                            rel=1e-15)


def test_platform_description_keeps_links():
    desc = read_platform_description(DATA / "two_clusters.json")
    assert [c.id for c in desc.clusters] == ["first", "second"]
    assert [c.nb_nodes for c in desc.clusters] == [3, 1]
    first, second = (c.local_link for c in desc.clusters)
    assert (first.network_type, first.bandwidth, first.latency) == ("InfiniBand QDR",
                                                                    "10.0Gbps", "1us")
    assert first.bandwidth_bytes_per_s == pytest.approx(1.25e9)
    assert first.latency_s == pytest.approx(1e-6)
    assert second.bandwidth == "1.0Gbps" and second.latency_s == pytest.approx(5e-4)
    assert desc.global_link.bandwidth == "54.54Gbps"
    assert desc.global_link.latency_s == pytest.approx(2e-9)


def test_arrays_are_read_only():
    platform = load_json_platform(bundled_platform("learning"))
    for array in (platform.speeds, platform.watts_idle, platform.watts_full,
                  platform.nb_pstates, platform.initial_pstate,
                  platform.hierarchy.core_processor, platform.hierarchy.node_memory_mb):
        assert not array.flags.writeable
    with pytest.raises(ValueError):
        platform.speeds[0, 0] = 1.0
    xml = load_xml_platform(DATA / "small_platform.xml")
    with pytest.raises(ValueError):
        xml.watts_full[0, 0] = 1.0


# ---------------------------------------------------------------------------------------------
# Platform JSON errors
# ---------------------------------------------------------------------------------------------


def json_error(tmp_path: Path, data, **kwargs) -> PlatformError:
    path = write_json(tmp_path, "bad_platform.json", data)
    with pytest.raises(PlatformError) as info:
        load_json_platform(path, **kwargs)
    assert info.value.source == str(path)
    assert str(path) in str(info.value)
    return info.value


def test_unknown_node_type_names_file_path_and_suggestion(tmp_path):
    data = learning_dict()
    data["clusters"][0]["nodes"][0]["type"] = "Test1"
    err = json_error(tmp_path, data)
    assert err.where == "clusters[0].nodes[0].type"
    assert "clusters[0].nodes[0].type" in str(err)
    assert "unknown node type 'Test1'" in str(err) and "did you mean 'Test0'" in str(err)


def test_missing_field_names_the_missing_key(tmp_path):
    data = learning_dict()
    data["clusters"][0]["nodes"].append({"type": "Test0"})
    err = json_error(tmp_path, data)
    assert err.where == "clusters[0].nodes[1].number"
    assert "missing" in str(err)


def test_negative_count_is_rejected(tmp_path):
    data = learning_dict()
    data["clusters"][0]["nodes"][0]["number"] = -3
    err = json_error(tmp_path, data)
    assert err.where == "clusters[0].nodes[0].number"
    assert "non-negative integer" in str(err) and "-3" in str(err)


def test_count_of_wrong_type_is_rejected(tmp_path):
    data = learning_dict()
    data["clusters"][0]["nodes"][0]["number"] = "72"
    err = json_error(tmp_path, data)
    assert err.where == "clusters[0].nodes[0].number"
    assert "found string '72'" in str(err)


@pytest.mark.parametrize("where, edit", [
    ("clusters[0].speed", lambda d: d["clusters"][0].update(speed=1)),
    ("job_limits", lambda d: d.update(job_limits={})),
    ("global_links.bandwidth", lambda d: d["global_links"].update(bandwidth="1Gbps")),
    ("clusters[0].nodes[0].count", lambda d: d["clusters"][0]["nodes"][0].update(count=2)),
])
def test_unknown_keys_are_errors(tmp_path, where, edit):
    data = learning_dict()
    edit(data)
    err = json_error(tmp_path, data)
    assert err.where == where
    assert "unknown key" in str(err)


def test_unknown_network_type(tmp_path):
    data = learning_dict()
    data["global_links"]["type"] = "InfiniBand HDR"
    err = json_error(tmp_path, data)
    assert err.where == "global_links.type"
    assert "unknown network type 'InfiniBand HDR'" in str(err)
    assert "InfiniBand QDR" in str(err)


def test_bad_latency_unit(tmp_path):
    data = learning_dict()
    data["clusters"][0]["local_links"]["latency"] = "3 parsecs"
    err = json_error(tmp_path, data)
    assert err.where == "clusters[0].local_links.latency"
    assert "latency" in str(err)


def test_cluster_without_nodes_and_empty_lists(tmp_path):
    data = learning_dict()
    data["clusters"][0]["nodes"][0]["number"] = 0
    assert json_error(tmp_path, data).where == "clusters[0].nodes"
    data["clusters"][0]["nodes"] = []
    assert "non-empty list" in str(json_error(tmp_path, data))
    data = learning_dict()
    data["clusters"] = []
    assert json_error(tmp_path, data).where == "clusters"


def test_node_count_zero_keeps_other_entries(tmp_path):
    data = learning_dict()
    data["clusters"][0]["nodes"].insert(0, {"type": "DAS2-fs0", "number": 0})
    path = write_json(tmp_path, "p.json", data)
    assert load_json_platform(path).nb_machines == 4


def test_invalid_json_names_line(tmp_path):
    path = write(tmp_path, "broken.json", '{\n  "clusters": [\n    ,\n  ]\n}\n')
    with pytest.raises(PlatformError) as info:
        load_json_platform(path)
    assert info.value.where.startswith("line 3")


def test_missing_file_is_a_platform_error(tmp_path):
    with pytest.raises(PlatformError) as info:
        load_json_platform(tmp_path / "nowhere.json")
    assert "nowhere.json" in str(info.value)


# ---------------------------------------------------------------------------------------------
# Type libraries
# ---------------------------------------------------------------------------------------------


def test_default_type_library_contents():
    lib = default_type_library()
    assert len(lib.processors) == 45 and len(lib.nodes) == 56 and len(lib.networks) == 4
    e5 = lib.processors["Xeon E5-2660"]
    assert (e5.cores, e5.clock_rate_ghz, e5.dpflops_per_cycle, e5.mem_bw_gbs, e5.power_w) == \
        (8, 2.2, 8, 51.2, 71.25)
    assert e5.gflops_per_core == pytest.approx(17.6)
    assert e5.watts_per_core == pytest.approx(8.90625)
    assert lib.processors["Opteron 244"].power_w == 61.575
    assert lib.nodes["Urga Node"].processors == (("Xeon E5-4627 v2", 48),)
    assert lib.nodes["Urga Node"].memory_mb == 6144000
    assert lib.networks["InfiniBand FDR x4"].bandwidth == "54.54Gbps"
    assert lib.networks["Gigabit Ethernet 1000BASE-T"].bandwidth_bytes_per_s == 1.25e8
    assert "_doc" not in lib.processors


def test_user_library_extends_and_overrides_default():
    lib = load_type_library(DATA / "custom_types")
    assert "Toy8" in lib.processors and "Xeon E5-2660" in lib.processors
    assert lib.processors["Test0_0"].clock_rate_ghz == 2.0
    assert lib.origin("processors", "Toy8").endswith("processors.json")
    platform = load_json_platform(DATA / "toy.json", typelib=lib)
    h = platform.hierarchy
    assert platform.nb_machines == 2 * (16 + 2) + 4
    assert h.processor_type[:3] == ("Toy8", "Toy8", "Test0_1")
    # Overridden Test0_0: 2.0 GHz x 4 = 8 GFLOP/s, 60 W / 2 cores.
    assert h.processor_gflops_per_core[6] == 8.0 and h.processor_watts_per_core[6] == 30.0
    assert h.node_memory_mb.tolist() == [64000, 64000, 32000]
    # A path is accepted too, and the bundled learning platform sees the override.
    learning = load_json_platform(bundled_platform("learning"), typelib=DATA / "custom_types")
    assert learning.speeds[0, 0] == 8e9


def test_toy_platform_needs_the_user_library():
    with pytest.raises(PlatformError) as info:
        load_json_platform(DATA / "toy.json")
    assert info.value.where == "clusters[0].nodes[0].type"


def library_error(tmp_path: Path, kind: str, data) -> PlatformError:
    path = write_json(tmp_path, f"{kind}.json", data)
    with pytest.raises(PlatformError) as info:
        load_type_library(path)
    assert info.value.source == str(path)
    return info.value


GOOD_PROC = {"cores": 4, "clock_rate": 2.0, "dpflops_per_cycle": 4, "mem_bw": 20, "power": 80}


@pytest.mark.parametrize("field, value, where, text", [
    ("cores", None, '["Foo X"].cores', "missing"),
    ("cores", 0, '["Foo X"].cores', "positive integer"),
    ("cores", -2, '["Foo X"].cores', "positive integer"),
    ("cores", "4", '["Foo X"].cores', "found string '4'"),
    ("cores", 2.5, '["Foo X"].cores', "positive integer"),
    ("clock_rate", 0, '["Foo X"].clock_rate', "positive number"),
    ("clock_rate", -1.5, '["Foo X"].clock_rate', "positive number"),
    ("power", True, '["Foo X"].power', "boolean"),
    ("frequency", 3, '["Foo X"].frequency', "unknown key"),
    ("type", "GPU", '["Foo X"].type', "only 'CPU'"),
])
def test_processor_library_validation(tmp_path, field, value, where, text):
    entry = dict(GOOD_PROC)
    if value is None:
        del entry[field]
    else:
        entry[field] = value
    err = library_error(tmp_path, "processors", {"Foo X": entry})
    assert err.where == where
    assert text in str(err)


def test_node_type_with_unknown_processor_type(tmp_path):
    nodes = {"Bad Node": {"processors": [{"type": "Xeon E5-2660", "number": 2},
                                         {"type": "Xeon E5-2661", "number": 1}],
                          "memory": {"type": "DDR3-1600", "capacity": 8}}}
    err = library_error(tmp_path, "nodes", nodes)
    assert err.where == '["Bad Node"].processors[1].type'
    assert "unknown processor type 'Xeon E5-2661'" in str(err)


def test_node_type_checks(tmp_path):
    nodes = {"N": {"processors": [{"type": "Basic", "number": 0}], "memory": {"capacity": 8}}}
    assert library_error(tmp_path, "nodes", nodes).where == "N.processors[0].number"
    nodes = {"N": {"processors": [{"type": "Basic", "number": 1}], "memory": {"capacity": -8}}}
    assert library_error(tmp_path, "nodes", nodes).where == "N.memory.capacity"


def test_network_bandwidth_must_parse(tmp_path):
    err = library_error(tmp_path, "networks", {"Slow": {"bandwidth": "12 furlongs"}})
    assert err.where == "Slow.bandwidth"


def test_library_file_name_must_say_its_kind(tmp_path):
    path = write_json(tmp_path, "cpus.json", {"Foo": GOOD_PROC})
    with pytest.raises(PlatformError, match="cannot tell which type library"):
        load_type_library(path)
    # ... unless it is passed by keyword.
    lib = load_type_library(processors=path)
    assert lib.processors["Foo"].gflops_per_core == 8.0


# ---------------------------------------------------------------------------------------------
# SimGrid / Batsim XML
# ---------------------------------------------------------------------------------------------


def test_xml_ids_follow_bytewise_name_order():
    platform = load_xml_platform(DATA / "lexicographic.xml")
    assert platform.host_names == ("c0", "c1", "c10", "c11", "c2", "c3", "c4", "c5", "c6",
                                   "c7", "c8", "c9")
    # Host ck runs at (k+1) Gflop/s whatever its id.
    for machine, name in enumerate(platform.host_names):
        assert platform.speeds[machine, 0] == (int(name[1:]) + 1) * 1e9
    assert platform.hierarchy is None
    assert np.all(platform.initial_pstate == 0) and np.all(platform.nb_pstates == 1)
    # No power property: zero watts.
    assert np.all(platform.watts_idle == 0) and np.all(platform.watts_full == 0)


HOST_NAMES = st.lists(st.text(alphabet="abcXYZ019_-.é", min_size=1, max_size=6),
                      min_size=1, max_size=20, unique=True)


@settings(max_examples=60, deadline=None)
@given(names=HOST_NAMES, data=st.data())
def test_xml_ids_are_bytewise_order_for_any_names(tmp_path_factory, names, data):
    speeds = data.draw(st.lists(st.integers(1, 10**6), min_size=len(names),
                                max_size=len(names)))
    unit = data.draw(st.sampled_from([("f", 1.0), ("kf", 1e3), ("Mf", 1e6), ("Gf", 1e9),
                                      ("", 1.0)]))
    hosts = "\n".join(f'<host id="{n}" speed="{v}{unit[0]}"/>' for n, v in zip(names, speeds))
    path = write(tmp_path_factory.mktemp("xml"), "p.xml", xml_doc(hosts))
    platform = load_xml_platform(path)
    assert list(platform.host_names) == sorted(names, key=lambda n: n.encode("utf-8"))
    by_name = dict(zip(names, speeds))
    assert platform.speeds[:, 0].tolist() == [by_name[n] * unit[1] for n in platform.host_names]


def test_small_platform_names_and_master_host():
    platform = load_xml_platform(DATA / "small_platform.xml")
    assert platform.host_names == ("Bourassa", "Fafard", "Ginette", "Jupiter")
    assert platform.speeds[:, 0].tolist() == [48.492e6, 76.296e6, 48.492e6, 25.3e6]
    assert platform.watts_idle[:, 0].tolist() == [80, 90, 95, 100]
    assert platform.watts_full[:, 0].tolist() == [110, 150, 200, 120]
    # With another master host, master_host becomes a machine and Jupiter is excluded.
    other = load_xml_platform(DATA / "small_platform.xml", master_host="Jupiter")
    assert other.host_names == ("Bourassa", "Fafard", "Ginette", "master_host")


def test_master_host_is_not_a_machine():
    platform = load_xml_platform(DATA / "lexicographic.xml")
    assert "master_host" not in platform.host_names
    assert platform.nb_machines == 12


def test_xml_speed_units_pstates_and_padding():
    platform = load_xml_platform(DATA / "mixed_pstates.xml")
    assert platform.host_names == ("h_a", "h_b", "h_c", "h_d")
    assert platform.nb_pstates.tolist() == [3, 1, 2, 2]
    assert platform.initial_pstate.tolist() == [2, 0, 0, 0]
    s = platform.speeds
    assert s[0].tolist() == [1e9, 5e8, 2e8]
    assert s[1, 0] == 2e9 and np.all(np.isnan(s[1, 1:]))
    assert s[2, :2].tolist() == [0.5e12, 1.5e15] and np.isnan(s[2, 2])
    assert s[3, :2].tolist() == [3.0, 2e15]


def test_xml_wattage_forms():
    platform = load_xml_platform(DATA / "mixed_pstates.xml")
    idle, full = platform.watts_idle, platform.watts_full
    assert idle[0].tolist() == [100, 90, 80] and full[0].tolist() == [200, 150, 110]
    # idle:epsilon:full keeps the idle and full-load ends.
    assert idle[1, 0] == 10 and full[1, 0] == 20 and np.isnan(idle[1, 1])
    # No property: zero over the host's p-states, NaN beyond.
    assert idle[2, :2].tolist() == [0, 0] and np.isnan(full[2, 2])
    # The older property name.
    assert idle[3, :2].tolist() == [1.5, 0.5] and full[3, :2].tolist() == [2.5, 0.75]


def test_hdeeprm_style_xml_matches_compiled_json():
    xml = load_xml_platform(DATA / "learning_hdeeprm.xml")
    compiled = load_json_platform(bundled_platform("learning"))
    assert xml.host_names == compiled.host_names
    assert np.array_equal(xml.speeds, compiled.speeds)
    assert np.array_equal(xml.watts_idle, compiled.watts_idle)
    assert np.array_equal(xml.watts_full, compiled.watts_full)
    assert np.array_equal(xml.initial_pstate, compiled.initial_pstate)


def xml_doc(hosts: str, master: bool = True) -> str:
    head = '<host id="master_host" speed="1Gf"/>' if master else ""
    return ("<?xml version='1.0'?>\n"
            '<!DOCTYPE platform SYSTEM "https://simgrid.org/simgrid.dtd">\n'
            f'<platform version="4.1"><zone id="z" routing="Full">{head}\n{hosts}\n'
            "</zone></platform>\n")


def xml_error(tmp_path: Path, text: str) -> PlatformError:
    path = write(tmp_path, "bad.xml", text)
    with pytest.raises(PlatformError) as info:
        load_xml_platform(path)
    assert info.value.source == str(path)
    assert str(path) in str(info.value)
    return info.value


@pytest.mark.parametrize("host, field, text", [
    ('<host id="h1" speed="4Xf"/>', "speed", "unknown unit 'Xf'"),
    ('<host id="h1" speed="1Gf, fast"/>', "speed", "p-state 1"),
    ('<host id="h1" speed="-1Gf"/>', "speed", "negative"),
    ('<host id="h1"/>', "speed", "missing"),
    ('<host id="h1" speed="1Gf, 2Gf" pstate="2"/>', "pstate", "out of range"),
    ('<host id="h1" speed="1Gf" pstate="-1"/>', "pstate", "out of range"),
    ('<host id="h1" speed="1Gf" pstate="one"/>', "pstate", "expected an integer"),
    ('<host id="h1" speed="1Gf, 2Gf"><prop id="wattage_per_state" value="1:2"/></host>',
     "wattage_per_state", "1 power entries for 2 p-state"),
    ('<host id="h1" speed="1Gf"><prop id="wattage_per_state" value="1:2:3:4"/></host>',
     "wattage_per_state", "idle:epsilon:full"),
    ('<host id="h1" speed="1Gf"><prop id="watt_per_state" value="a:b"/></host>',
     "watt_per_state", "expected numbers"),
])
def test_xml_host_errors_name_host_and_attribute(tmp_path, host, field, text):
    err = xml_error(tmp_path, xml_doc(host))
    assert err.field == field
    assert "host 'h1'" in err.where
    assert text in str(err)


def test_xml_duplicate_host(tmp_path):
    err = xml_error(tmp_path, xml_doc('<host id="h1" speed="1Gf"/>\n<host id="h1" speed="2Gf"/>'))
    assert "host 'h1'" in err.where and "duplicate" in str(err)


def test_xml_without_compute_host(tmp_path):
    assert "no compute host" in str(xml_error(tmp_path, xml_doc("")))


def test_xml_malformed(tmp_path):
    err = xml_error(tmp_path, xml_doc('<host id="h1" speed="1Gf">'))
    assert "malformed XML" in str(err)


def test_xml_blank_line_before_the_declaration_is_read(tmp_path):
    """Batsim's own platform files (platforms/energy_platform_homogeneous_no_net_128.xml...)
    start with an empty line before the XML declaration; SimGrid reads them, so do we, and
    errors keep their line numbers."""
    path = tmp_path / "p.xml"
    path.write_text("\n<?xml version='1.0' encoding='ISO-8859-1'?>\n"
                    '<!DOCTYPE platform SYSTEM "http://simgrid.gforge.inria.fr/simgrid/simgrid.dtd">\n'
                    '<platform version="4"><AS id="AS0" routing="Vivaldi">\n'
                    '<host id="master_host" coordinates="0 0 0" speed="100Mf"/>\n'
                    '<host id="h\xe9" coordinates="0 0 0" speed="100.0Mf, 50Mf"/>\n</AS></platform>\n',
                    encoding="latin-1")
    platform = load_xml_platform(path)
    assert platform.host_names == ("h\xe9",) and platform.speeds[0].tolist() == [1e8, 5e7]
    path.write_text("\n<?xml version='1.0'?>\n<platform>\n<AS id='a' routing='Full'>\n"
                    '<host id="h1" speed="1Gf" pstate="3"/></AS></platform>')
    err = xml_error(tmp_path, path.read_text())
    assert "line 5" in err.where and err.field == "pstate"


def test_xml_cluster_element_is_refused(tmp_path):
    cluster = '<cluster id="c" prefix="n" suffix="" radical="0-3" speed="1Gf" bw="1Gbps" lat="0"/>'
    assert "<cluster>" in str(xml_error(tmp_path, xml_doc(cluster)))


def test_xml_parser_does_not_resolve_external_entities(tmp_path):
    secret = write(tmp_path, "secret.txt", "7Gf")
    doctype = f'<!DOCTYPE platform [<!ENTITY s SYSTEM "{secret.as_uri()}">]>\n'
    # In element content the reference is left unexpanded and harmless.
    text = ("<?xml version='1.0'?>\n" + doctype + '<platform version="4.1">'
            '<host id="h1" speed="1Gf">&s;</host></platform>\n')
    platform = load_xml_platform(write(tmp_path, "content.xml", text))
    assert platform.host_names == ("h1",) and platform.speeds[0, 0] == 1e9
    # In an attribute it cannot be left unexpanded: refused, and the file is never read.
    text = ("<?xml version='1.0'?>\n" + doctype + '<platform version="4.1">'
            '<host id="h1" speed="&s;"/></platform>\n')
    err = xml_error(tmp_path, text)
    assert "malformed XML" in str(err) and "7Gf" not in str(err)


# ---------------------------------------------------------------------------------------------
# Hierarchy files
# ---------------------------------------------------------------------------------------------


def test_a5_xml_with_hierarchy():
    platform = load_platform(DATA / "a5_platform.xml", DATA / "a5_hierarchy.json")
    h = platform.hierarchy
    assert platform.nb_machines == 16
    assert platform.host_names[0] == "cor_000" and platform.host_names[-1] == "cor_015"
    assert np.all(platform.initial_pstate == 0)
    assert platform.speeds[4].tolist() == [3.2e9, 2.4e9, 0.001, 0.001]
    assert platform.watts_full[15].tolist() == [16, 16, 4, 0.8]
    assert h.core_processor.tolist() == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4
    assert h.core_node.tolist() == [0] * 8 + [1] * 8
    assert h.processor_mem_bw_gbs.tolist() == [32, 25.6, 32, 25.6]
    assert h.processor_gflops_per_core.tolist() == [4.0, 3.2, 4.0, 3.2]
    assert h.processor_watts_per_core.tolist() == [20, 16, 20, 16]
    assert h.processor_type == ("A", "B", "A", "B")
    assert h.node_memory_mb.tolist() == [12000, 12000]
    assert h.node_type == ("N", "N")
    assert h.reference_speed_gflops == 3.6
    parsed = read_hierarchy_file(DATA / "a5_hierarchy.json")
    assert (parsed.platform_pstate, parsed.initial_pstate) == (0, 3)


def assert_same_hierarchy(a, b):
    for name in ("core_processor", "core_node", "processor_node", "processor_mem_bw_gbs",
                 "processor_gflops_per_core", "processor_watts_per_core", "node_memory_mb",
                 "node_cluster"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.processor_type == b.processor_type and a.node_type == b.node_type
    assert a.reference_speed_gflops == b.reference_speed_gflops


def test_hierarchy_round_trip_a5(tmp_path):
    platform = load_platform(DATA / "a5_platform.xml", DATA / "a5_hierarchy.json")
    out = tmp_path / "hierarchy.json"
    write_hierarchy(platform, out)
    written, original = json.loads(out.read_text()), json.loads((DATA / "a5_hierarchy.json")
                                                                .read_text())
    for node in written["nodes"]:
        assert node.pop("cluster") == 0
    assert written == original
    again = attach_hierarchy(load_xml_platform(DATA / "a5_platform.xml"), out)
    assert_same_hierarchy(again.hierarchy, platform.hierarchy)


def test_json_platform_hierarchy_survives_xml(tmp_path):
    compiled = load_json_platform(bundled_platform("learning"))
    out = tmp_path / "hierarchy.json"
    write_hierarchy(compiled, out)
    doc = json.loads(out.read_text())
    assert (doc["platform_pstate"], doc["initial_pstate"]) == (3, 3)
    assert doc["nodes"][0]["processors"][1]["hosts"] == ["cor_2", "cor_3"]
    loaded = load_platform(DATA / "learning_hdeeprm.xml", out)
    assert_same_hierarchy(loaded.hierarchy, compiled.hierarchy)


@pytest.mark.parametrize("name", ["gaia", "mc2"])
def test_hierarchy_round_trip_large(tmp_path, name):
    compiled = load_json_platform(bundled_platform(name))
    out = tmp_path / "hierarchy.json"
    write_hierarchy(compiled, out)
    parsed = read_hierarchy_file(out)
    assert_same_hierarchy(parsed.hierarchy, compiled.hierarchy)
    assert parsed.core_hosts == compiled.host_names


def edited_a5(tmp_path: Path, edit) -> Path:
    data = json.loads((DATA / "a5_hierarchy.json").read_text())
    edit(data)
    return write_json(tmp_path, "hierarchy.json", data)


def attach_error(platform: Platform, path: Path) -> PlatformError:
    with pytest.raises(PlatformError) as info:
        attach_hierarchy(platform, path)
    assert info.value.source == str(path)
    return info.value


def a5_xml() -> Platform:
    return load_xml_platform(DATA / "a5_platform.xml")


def test_hierarchy_host_name_mismatch(tmp_path):
    def swap(d):
        d["nodes"][0]["processors"][0]["hosts"][1] = "cor_009"
    err = attach_error(a5_xml(), edited_a5(tmp_path, swap))
    assert "machine 1" in err.where and "cor_009" in str(err) and "cor_001" in str(err)


def test_hierarchy_core_listed_twice(tmp_path):
    def dup(d):
        d["nodes"][1]["processors"][1]["cores"][3] = 0
    err = attach_error(a5_xml(), edited_a5(tmp_path, dup))
    assert err.where == "nodes[1].processors[1].cores[3]"
    assert "already" in str(err)


def test_hierarchy_core_missing(tmp_path):
    def drop(d):
        proc = d["nodes"][0]["processors"][0]
        proc["cores"], proc["hosts"] = proc["cores"][1:], proc["hosts"][1:]
    assert "machine 0 is missing" in str(attach_error(a5_xml(), edited_a5(tmp_path, drop)))


def test_hierarchy_for_another_platform_size(tmp_path):
    err = attach_error(load_xml_platform(DATA / "learning_hdeeprm.xml"),
                       DATA / "a5_hierarchy.json")
    assert "4 machines" in str(err)


def test_hierarchy_platform_pstate_must_match_xml(tmp_path):
    path = edited_a5(tmp_path, lambda d: d.update(platform_pstate=3))
    assert attach_error(a5_xml(), path).where == "platform_pstate"


def test_hierarchy_field_checks(tmp_path):
    def bad_bw(d):
        d["nodes"][0]["processors"][1]["mem_bw"] = -1
    assert attach_error(a5_xml(), edited_a5(tmp_path, bad_bw)).where == \
        "nodes[0].processors[1].mem_bw"
    assert attach_error(a5_xml(), edited_a5(tmp_path, lambda d: d.update(extra=1))).where == \
        "extra"
    assert attach_error(a5_xml(), edited_a5(tmp_path, lambda d: d.pop("nodes"))).where == \
        "nodes"


def test_write_hierarchy_needs_a_hierarchy(tmp_path):
    with pytest.raises(PlatformError, match="no node/processor hierarchy"):
        write_hierarchy(load_xml_platform(DATA / "small_platform.xml"), tmp_path / "h.json")


# ---------------------------------------------------------------------------------------------
# load_platform dispatch
# ---------------------------------------------------------------------------------------------


def test_load_platform_dispatches_on_extension(tmp_path):
    assert load_platform(bundled_platform("das2")).nb_machines == 144
    assert load_platform(DATA / "small_platform.xml").hierarchy is None
    assert load_platform(DATA / "a5_platform.xml", DATA / "a5_hierarchy.json").hierarchy \
        is not None
    with pytest.raises(PlatformError, match="unknown platform format"):
        load_platform(write(tmp_path, "p.yaml", "clusters: []"))
    with pytest.raises(PlatformError, match="only applies to XML"):
        load_platform(bundled_platform("das2"), DATA / "a5_hierarchy.json")


def test_platform_errors_are_hdeeprm_errors(tmp_path):
    copy = tmp_path / "copy.xml"
    shutil.copy(DATA / "lexicographic.xml", copy)
    copy.write_text(copy.read_text().replace('speed="3Gf"', 'speed="3Qf"'))
    with pytest.raises(HDeepRMError) as info:
        load_platform(copy)
    assert "host 'c2'" in str(info.value) and "'speed'" in str(info.value)


# ---------------------------------------------------------------------------------------------
# Homogeneous platforms "<N>x<node type>"
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def platform_cache(tmp_path, monkeypatch) -> Path:
    """Where resolve_platform_name writes the JSON of "<N>x<node type>" names."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "hdeeprm" / "platforms"


def test_homogeneous_name_is_one_cluster_of_that_node_type(tmp_path):
    platform = load_platform("8xDell R720")
    h = platform.hierarchy
    assert platform.nb_machines == 128 and platform.source == "8xDell R720"
    assert (h.nb_nodes, h.nb_processors) == (8, 16)
    assert set(h.node_type) == {"Dell R720"} and set(h.processor_type) == {"Xeon E5-2660"}
    assert h.node_cluster.tolist() == [0] * 8
    assert h.reference_speed_gflops == pytest.approx(17.6)
    assert h.processor_mem_bw_gbs.tolist() == [51.2] * 16
    # The same as the platform JSON a user would write by hand.
    by_hand = load_platform(write_json(tmp_path, "p.json", {
        "clusters": [{"nodes": [{"type": "Dell R720", "number": 8}],
                      "local_links": {"type": "InfiniBand QDR", "latency": "0us"}}],
        "global_links": {"type": "InfiniBand QDR", "latency": "0us"}}))
    for name in ("speeds", "watts_idle", "watts_full", "nb_pstates", "initial_pstate"):
        assert np.array_equal(getattr(platform, name), getattr(by_hand, name)), name
    assert platform.host_names == by_hand.host_names


def test_homogeneous_name_resolves_to_a_json_with_quickstart_links(platform_cache):
    path = resolve_platform_name("4xDell R820")
    assert Path(path).parent == platform_cache and path.endswith(".json")
    description = read_platform_description(path)
    quickstart = read_platform_description(bundled_platform("quickstart"))
    assert description.global_link == quickstart.global_link
    assert description.clusters[0].local_link == quickstart.clusters[0].local_link
    assert description.global_link.latency_s == 0.0
    assert [(g.node_type, g.number) for g in description.clusters[0].node_groups] == \
        [("Dell R820", 4)]
    loaded = load_platform(path)
    assert loaded.nb_machines == 128
    assert np.array_equal(loaded.speeds, load_platform("4xDell R820").speeds)
    # Resolving again gives the same file, left as it is.
    stamp = Path(path).stat().st_mtime_ns
    assert resolve_platform_name("4xDell R820") == path
    assert Path(path).stat().st_mtime_ns == stamp
    # A bundled name still wins, and other values are left alone.
    assert resolve_platform_name("quickstart") == str(bundled_platform("quickstart"))
    assert resolve_platform_name("runs/2xDell R720") == "runs/2xDell R720"
    assert resolve_platform_name("3xsmall.xml") == "3xsmall.xml"


def test_homogeneous_name_falls_back_to_the_temporary_folder(tmp_path, monkeypatch):
    import tempfile

    blocker = write(tmp_path, "not-a-folder", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # cannot hold a folder
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    path = resolve_platform_name("1xDell R720")
    assert Path(path) == tmp_path / "tmp" / "hdeeprm-platforms" / "1xDell_R720.json"
    assert load_platform(path).nb_machines == 16


def test_homogeneous_name_spelling(platform_cache):
    assert load_platform("2 x dell r720").hierarchy.node_type == ("Dell R720", "Dell R720")
    assert load_platform(resolve_platform_name("2 x dell r720")).nb_machines == 32


@pytest.mark.parametrize("spec", ["4xDell R72O", "4x Dell R72O"])
def test_homogeneous_name_with_unknown_node_type(spec, platform_cache):
    with pytest.raises(PlatformError) as info:
        load_platform(spec)
    message = str(info.value)
    assert message.startswith(f"{spec}: unknown node type 'Dell R72O'")
    assert "did you mean 'Dell R720'?" in message
    for known in ("Dell R720", "Manwe Node A", "Bullx B500-0", "Zorg Node"):
        assert known in message
    # resolve_platform_name leaves it for load_platform to report (as an unknown bundled
    # name), writing nothing.
    assert resolve_platform_name(spec) == spec
    assert not platform_cache.exists()


def test_homogeneous_name_other_errors(tmp_path):
    with pytest.raises(PlatformError, match="0xDell R720: expected at least 1 node, found 0"):
        load_platform("0xDell R720")
    with pytest.raises(PlatformError, match="only applies to XML"):
        load_platform("2xDell R720", DATA / "a5_hierarchy.json")


def test_homogeneous_name_with_a_user_type_library():
    platform = load_platform("3xToyNode", typelib=DATA / "custom_types")
    assert platform.nb_machines == 3 * (16 + 2)
    with pytest.raises(PlatformError, match="unknown node type 'ToyNode'"):
        load_platform("3xToyNode")


def test_load_platform_accepts_bundled_names():
    assert load_platform("das2").nb_machines == 144
