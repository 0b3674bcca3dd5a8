"""lredit.manifest owns the bundle format both ways: what lr-export writes is exactly what the
typed manifest parses (no field written that no reader reads), and parse(write(m)) == m."""

import json

from lredit.manifest import manifest_data, parse_manifest, read_manifest, write_manifest


def test_the_exported_manifest_is_the_writers_form_of_the_typed_one(tiny_bundle):
    on_disk = json.loads((tiny_bundle / "manifest.json").read_text())
    typed = read_manifest(tiny_bundle)
    assert on_disk == manifest_data(typed)  # every written field is parsed, and nothing else is written
    assert parse_manifest(manifest_data(typed), tiny_bundle) == typed
    assert "anchors" not in on_disk["pipeline"] and "export_seconds" not in on_disk  # EditConfig's, not the bundle's
    assert typed.graphs["unet"].notes == "" and typed.graphs["vae_decoder"].notes.startswith("input divided")


def test_write_manifest_round_trips_through_the_file(tiny_bundle, tmp_path):
    import dataclasses

    typed = read_manifest(tiny_bundle)
    copy = dataclasses.replace(typed, bundle=tmp_path, complete=False)
    path = write_manifest(copy)
    assert path == tmp_path / "manifest.json"
    back = read_manifest(tmp_path, require_complete=False)
    assert back == copy and back.complete is False
