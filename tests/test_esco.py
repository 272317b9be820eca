import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import shared_or_skip
from escotag import ConfigError, DataError, load_taxonomy
from escotag.esco import EMBEDDED, configured_source, embedded_path, read_snapshot, write_snapshot
from escotag.esco.snapshot import read_metadata
from escotag.settings import use_settings
from escotag.text.normalization import label_variants, normalize

HEADER = ["conceptType", "conceptUri", "iscoGroup", "preferredLabel", "altLabels", "hiddenLabels", "status",
          "modifiedDate", "regulatedProfessionNote", "scopeNote", "definition", "inScheme", "description", "code"]
U1 = "http://data.europa.eu/esco/occupation/1"
U2 = "http://data.europa.eu/esco/occupation/2"


def occ(uri, isco, label, alt="", modified="2020-01-01", description="", code="0110.1", hidden=""):
    return {"conceptType": "Occupation", "conceptUri": uri, "iscoGroup": isco, "preferredLabel": label,
            "altLabels": alt, "hiddenLabels": hidden, "status": "released", "modifiedDate": modified,
            "regulatedProfessionNote": "", "scopeNote": "", "definition": "", "inScheme": "",
            "description": description, "code": code}


def write(path: Path, rows, header=HEADER, bom=False):
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        w.writerows(rows)


@pytest.fixture
def export(tmp_path: Path) -> Path:
    write(tmp_path / "occupations_en.csv", [
        occ(U1, "0110", "officer", "army officer\nmilitary officer", "2020-01-01", "Old description."),
        occ(U1, "0110", "officer", "army officer\nmilitary officer", "2023-05-01", "Officers lead."),
        occ(U2, "2512", "software developer", "programmer\n\ncoder", code="2512.4"),
    ], bom=True)
    write(tmp_path / "occupations_de.csv", [
        occ(U1, "0110", "Offizier/Offizierin", "Heeresoffizier\nHeeresoffizierin"),
        occ(U2, "2512", "Softwareentwickler/Softwareentwicklerin", "TCP/IP-Entwickler"),
    ])
    # a re-saved file that lost the leading zero of the ISCO code and the trailing zero of the ESCO code
    write(tmp_path / "occupations_es.csv", [occ(U1, "110", "oficial", code="110.1"),
                                            occ(U2, "2512", "desarrollador de software")])
    write(tmp_path / "occupations_ar.csv", [occ(U1, "0110", "ضابط / ضابطة"), occ(U2, "2512", "مطور برمجيات")])
    write(tmp_path / "ISCOGroups_en.csv", [
        {"conceptType": "ISCOGroup", "conceptUri": "http://data.europa.eu/esco/isco/C0110", "code": "0110",
         "preferredLabel": "Commissioned armed forces officers", "altLabels": "", "description": ""},
    ], header=["conceptType", "conceptUri", "code", "preferredLabel", "altLabels", "description"])
    write(tmp_path / "broaderRelationsOccPillar_en.csv", [
        {"conceptType": "Occupation", "conceptUri": U1, "broaderType": "ISCOGroup",
         "broaderUri": "http://data.europa.eu/esco/isco/C0110"},
    ], header=["conceptType", "conceptUri", "broaderType", "broaderUri"])
    return tmp_path


def test_loads_quirks(export: Path):
    tx = load_taxonomy(export)
    assert len(tx) == 2
    assert tx.languages == ["en", "ar", "de", "es"]
    officer = tx.get(U1)
    assert officer.labels["en"].description == "Officers lead."  # newest duplicate row wins
    assert officer.labels["en"].alt == ("army officer", "military officer")
    assert tx.get(U2).labels["en"].alt == ("programmer", "coder")  # empty line in a multi-value cell dropped
    assert officer.isco_code == "0110" and officer.code == "0110.1"  # codes from English, not the es file
    assert officer.parent == "http://data.europa.eu/esco/isco/C0110"
    assert tx.isco_label("0110") == "Commissioned armed forces officers"
    assert tx.isco_label("0110", "ar") == "Commissioned armed forces officers"  # no ar ISCO file: English
    assert officer.labels["de"].variants()[:2] == ["Offizier", "Offizierin"]
    assert officer.labels["ar"].variants() == ["ضابط", "ضابطة"]
    assert "TCP/IP-Entwickler" in tx.get(U2).labels["de"].variants()
    assert tx.occupations_under("http://data.europa.eu/esco/isco/C01") == {U1}


def test_zip_and_content_hash(export: Path, tmp_path_factory):
    archive = tmp_path_factory.mktemp("zip") / "esco.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in export.iterdir():
            z.write(f, f"ESCO dataset - v1.2.1 - classification - csv/{f.name}")
    from_zip, from_dir = load_taxonomy(archive), load_taxonomy(export)
    assert len(from_zip) == 2 and from_zip.content_hash == from_dir.content_hash
    write(export / "occupations_de.csv", [occ(U1, "0110", "Offizier")])
    assert load_taxonomy(export).content_hash != from_dir.content_hash


def test_missing_folder(tmp_path: Path):
    with pytest.raises(DataError, match="no such ESCO folder"):
        load_taxonomy(tmp_path / "nope")


def test_no_english(export: Path):
    (export / "occupations_en.csv").unlink()
    with pytest.raises(DataError, match="no occupations_en.csv"):
        load_taxonomy(export)


def test_malformed_csv_names_file_and_line(export: Path):
    with (export / "occupations_de.csv").open("a", encoding="utf-8") as f:
        f.write("Occupation,http://x/3,1111,label,extra,fields,too,many,a,b,c,d,e,f,g,h,i\n")
    # line 5: the first data row spans two lines (a multi-value cell)
    with pytest.raises(DataError, match=r"occupations_de\.csv, line 5: row has a different number of fields"):
        load_taxonomy(export)


def test_missing_column(export: Path):
    write(export / "occupations_nl.csv", [{"conceptUri": U1}], header=["conceptUri"])
    with pytest.raises(DataError, match=r"occupations_nl\.csv, line 1: missing column"):
        load_taxonomy(export)


def test_not_utf8(export: Path):
    (export / "occupations_nl.csv").write_bytes(",".join(HEADER).encode() + b"\nOccupation,\xff\xfe\n")
    with pytest.raises(DataError, match=r"occupations_nl\.csv, line 2: not UTF-8"):
        load_taxonomy(export)


def test_label_variants_and_normalize():
    assert label_variants("boulanger/boulangère") == ["boulanger", "boulangère"]
    assert label_variants("TCP/IP engineer") == ["TCP/IP engineer"]
    assert label_variants("مدير / مديرة") == ["مدير", "مديرة"]
    assert normalize("  Éléctricien ") == "electricien"
    assert normalize("أحمد مُهَندِس") == normalize("احمد مهندس")
    assert normalize("مكتبة") == normalize("مكتبه")


# ---- the packed snapshot ---------------------------------------------------------------------------------------
def escotag(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "escotag", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def test_pack_round_trip_is_reproducible(export: Path, tmp_path: Path):
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    for out in (first, second):
        done = escotag("esco", "pack", str(export), "--out", str(out), "--esco-version", "9.9")
        assert done.returncode == 0, done.stderr
    assert first.read_bytes() == second.read_bytes()
    from_csv, packed = load_taxonomy(export), load_taxonomy(first)
    assert packed.content_hash == from_csv.content_hash and packed.version == "9.9"
    assert [o.content() for o in packed.occupations] == [o.content() for o in from_csv.occupations]
    assert packed.get(U1).parent == "http://data.europa.eu/esco/isco/C0110" and packed.get(U1).status == "released"
    info = json.loads(escotag("esco", "info", str(first), "--json").stdout)
    assert (info["occupations"], info["isco_groups"], info["esco_version"]) == (2, 1, "9.9")
    assert info["languages"] == ["en", "ar", "de", "es"] and info["content_hash"] == from_csv.content_hash
    assert "2011/833/EU" in info["licence"]


def test_snapshot_languages_and_corruption(export: Path, tmp_path: Path):
    path = tmp_path / "esco.parquet"
    write_snapshot(load_taxonomy(export), path)
    assert read_snapshot(path, ["de"]).languages == ["en", "de"]
    table = pq.read_table(path)
    edited = table.set_column(table.schema.get_field_index("preferred"), "preferred",
                              pa.array(["changed", *table["preferred"].to_pylist()[1:]]))
    pq.write_table(edited, path)
    with pytest.raises(DataError, match="does not match the hash"):
        load_taxonomy(path)
    (tmp_path / "other.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        load_taxonomy(tmp_path / "other.parquet")


def test_source_resolution(export: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("ESCOTAG_ESCO_DIR", raising=False)
    assert configured_source() == EMBEDDED
    embedded = load_taxonomy()
    assert len(embedded) == 3039 and embedded.languages == ["en", "ar", "de", "es", "fr", "nl", "pt", "uk"]
    assert embedded.version.startswith("1.2") and embedded.source.startswith(EMBEDDED)
    monkeypatch.setenv("ESCOTAG_ESCO_DIR", str(export))
    use_settings(None)  # settings are read once per process
    assert len(load_taxonomy()) == 2
    monkeypatch.setenv("ESCOTAG_ESCO_DIR", str(export / "nope"))
    use_settings(None)
    with pytest.raises(ConfigError, match="does not exist; unset it to use the ESCO snapshot shipped"):
        load_taxonomy()


def test_shipped_snapshot_is_packed_from_the_shared_export(tmp_path: Path):
    source = shared_or_skip("esco")
    out = tmp_path / "esco.parquet"
    version = read_metadata(embedded_path())["esco_version"]
    done = escotag("esco", "pack", str(source), "--out", str(out), "--esco-version", version)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == embedded_path().read_bytes()
    assert embedded_path().stat().st_size < 15e6


# ---- differences between two versions -------------------------------------------------------------------------
def test_diff_lists_every_kind_of_change(export: Path, tmp_path: Path):
    newer = tmp_path / "newer"
    shutil.copytree(export, newer)
    u3, u4 = "http://data.europa.eu/esco/occupation/3", "http://data.europa.eu/esco/occupation/4"
    old_rows = [occ(U1, "0110", "officer"), occ(U2, "2512", "software developer"), occ(u3, "7212", "welder")]
    new_rows = [occ(U1, "0110", "armed forces officer"), occ(U2, "2514", "software developer"),
                occ(u4, "2166", "graphic designer")]
    new_rows[0]["status"] = "obsolete"
    write(export / "occupations_en.csv", old_rows)
    write(newer / "occupations_en.csv", new_rows)
    write(newer / "occupations_de.csv", [occ(U1, "0110", "Offizier/Offizierin", "Heeresoffizier"),
                                         occ(U2, "2512", "Softwareentwickler/Softwareentwicklerin")])
    packed = tmp_path / "newer.parquet"
    assert escotag("esco", "pack", str(newer), "--out", str(packed)).returncode == 0
    done = escotag("esco", "diff", str(export), str(packed), "--json")
    assert done.returncode == 0, done.stderr
    got = [(c["kind"], c["uri"], c["lang"], c["old"], c["new"]) for c in json.loads(done.stdout)]
    assert got == [
        ("added", u4, "", "", "2166"),
        ("removed", u3, "", "7212", ""),
        ("obsolete", U1, "", "released", "obsolete"),
        ("relabelled", U1, "en", "officer", "armed forces officer"),
        ("moved", U2, "", "2512", "2514"),
    ]
    table = escotag("esco", "diff", str(export), str(packed))
    assert "relabelled en" in " ".join(table.stdout.split()) and "5 change(s)" in table.stderr
    assert json.loads(escotag("esco", "diff", str(packed), str(packed), "--json").stdout) == []
