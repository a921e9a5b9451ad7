"""After the gate: verify hashes, sign off, export — through the command line."""

import json

import pytest


@pytest.fixture
def released(tmp_path, tabsynth_cli, people):
    out = tmp_path / "rel"
    code, _, stderr = tabsynth_cli("release", people, "--out", out, "--seed", "1", "--format", "csv")
    assert code == 0, stderr
    return out


@pytest.fixture
def review_policy(tmp_path):
    path = tmp_path / "reviewed.yaml"
    path.write_text("name: reviewed\nreview: {required: true}\n"
                    "rules:\n  - {metric: exact_copy_excess, op: '<=', threshold: 0.005}\n")
    return path


def test_manifest_lists_every_output_with_its_hash(released, tabsynth_cli):
    manifest = json.loads((released / "manifest.json").read_text())
    assert set(manifest["outputs"]) == {"synthetic.csv", "report.html"}
    assert "exact_copy_rate" in manifest["checks_reading_private_rows"]
    code, stdout, _ = tabsynth_cli("verify", released)
    assert code == 0 and "every file matches its manifest" in stdout


@pytest.mark.parametrize("tamper, message", [
    (lambda d: (d / "synthetic.csv").write_text("x\n1\n"), "synthetic.csv: contents changed"),
    (lambda d: (d / "report.html").unlink(), "report.html: listed in the manifest but missing"),
    (lambda d: (d / "extra.csv").write_text("x\n"), "extra.csv: not part of the release"),
])
@pytest.mark.slow
def test_verify_names_what_changed(released, tabsynth_cli, tamper, message):
    tamper(released)
    code, _, stderr = tabsynth_cli("verify", released)
    assert code == 2 and message in stderr


@pytest.mark.slow
def test_export_without_required_review_is_refused(tmp_path, tabsynth_cli, people, review_policy):
    out, dest = tmp_path / "rel", tmp_path / "shared"
    dest.mkdir()
    assert tabsynth_cli("release", people, "--out", out, "--policy", review_policy)[0] == 0
    code, _, stderr = tabsynth_cli("export", out, dest)
    assert code == 2 and "requires a reviewer's sign-off" in stderr and not list(dest.iterdir())
    code, stdout, _ = tabsynth_cli("approve", out, "--reviewer", "Ada Byron", "--note", "ticket 42")
    assert code == 0 and "approved by Ada Byron" in stdout
    approval = json.loads((out / "approvals.json").read_text())[0]
    assert approval["reviewer"] == "Ada Byron" and len(approval["manifest_sha256"]) == 64
    code, _, stderr = tabsynth_cli("export", out, dest)
    assert code == 0, stderr
    assert (dest / "synthetic.parquet").read_bytes() == (out / "synthetic.parquet").read_bytes()


@pytest.mark.slow
def test_editing_the_manifest_voids_the_sign_off(tmp_path, tabsynth_cli, people, review_policy):
    out = tmp_path / "rel"
    assert tabsynth_cli("release", people, "--out", out, "--policy", review_policy)[0] == 0
    assert tabsynth_cli("approve", out, "--reviewer", "Ada Byron")[0] == 0
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["gate"]["passed"] = True
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    code, _, stderr = tabsynth_cli("export", out, tmp_path / "copy.parquet")
    assert code == 2 and "sign-off" in stderr and not (tmp_path / "copy.parquet").exists()


@pytest.mark.slow
def test_export_never_overwrites_silently(released, tmp_path, tabsynth_cli):
    dest = tmp_path / "copy.csv"
    dest.write_text("keep me")
    code, _, stderr = tabsynth_cli("export", released, dest)
    assert code == 2 and "already exists" in stderr and dest.read_text() == "keep me"
    assert tabsynth_cli("export", released, dest, "--overwrite")[0] == 0
    assert dest.read_bytes() == (released / "synthetic.csv").read_bytes()


def test_approve_needs_a_release_folder(tmp_path, tabsynth_cli):
    code, _, stderr = tabsynth_cli("approve", tmp_path, "--reviewer", "x")
    assert code == 2 and "not a tabsynth release folder" in stderr


def test_the_releaser_cannot_review_their_own_release(tmp_path, tabsynth_cli, people, review_policy):
    import getpass

    out = tmp_path / "rel"
    assert tabsynth_cli("release", people, "--out", out, "--policy", review_policy)[0] == 0
    releaser = json.loads((out / "manifest.json").read_text())["released_by"]
    assert releaser == getpass.getuser()
    code, _, stderr = tabsynth_cli("approve", out, "--reviewer", releaser.upper())
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and "a different person must review" in stderr
    assert not (out / "approvals.json").exists()
    assert tabsynth_cli("approve", out, "--reviewer", "Ada Byron")[0] == 0
    assert json.loads((out / "approvals.json").read_text())[0]["os_user"] == releaser


@pytest.mark.slow
def test_export_into_a_folder_made_if_missing_or_to_a_named_file(released, tmp_path, tabsynth_cli):
    data = (released / "synthetic.csv").read_bytes()
    code, stdout, stderr = tabsynth_cli("export", released, tmp_path / "shared")  # the README's `export rel/ shared/`
    assert code == 0, stderr
    assert (tmp_path / "shared").is_dir() and (tmp_path / "shared" / "synthetic.csv").read_bytes() == data
    assert "shared/synthetic.csv" in stdout
    assert tabsynth_cli("export", released, tmp_path / "out" / "rows.csv")[0] == 0
    assert (tmp_path / "out" / "rows.csv").read_bytes() == data
    code, _, stderr = tabsynth_cli("export", released, tmp_path / "rows.parquet")
    assert code == 2 and "synthetic.csv, copied as it is" in stderr and not (tmp_path / "rows.parquet").exists()
    (tmp_path / "plain").write_text("keep me")
    code, _, stderr = tabsynth_cli("export", released, tmp_path / "plain")
    assert code == 2 and "is a file, not a folder" in stderr and (tmp_path / "plain").read_text() == "keep me"


def test_export_writes_a_public_data_card_beside_the_data(released, tmp_path, tabsynth_cli, people):
    code, stdout, stderr = tabsynth_cli("export", released, tmp_path / "shared")
    assert code == 0, stderr and "DATA_CARD.md" in stdout
    card = (tmp_path / "shared" / "DATA_CARD.md").read_text()
    manifest = json.loads((released / "manifest.json").read_text())
    output = manifest["outputs"]["synthetic.csv"]
    assert f"| Rows | {output['rows']:,} |" in card and output["sha256"] in card
    chosen = {"auto": " (chosen automatically by tabsynth)", "user": " (named by the releaser)"}
    assert f"| Model | {manifest['model']['name']}{chosen.get(manifest['model'].get('chosen_by'), '')} |" in card
    assert "not differentially private: the data carries no formal privacy guarantee" in card
    assert f"| Policy | {manifest['policy']['name']}: " in card and "passed the release gate: every rule held (" in card
    assert "| name | pii | replaced by fake values |" in card and "| patient_id | id | new keys" in card
    assert "| age | numerical | synthetic values from the model |" in card
    # nothing about the private table: no name, hash or size, no measurement of the release (they describe it)
    text = card.replace(output["sha256"], "")
    private = [people.name, manifest["input"]["sha256"], f"{manifest['input']['rows']:,}",
               *[m["name"] for m in manifest["metrics"] if m["name"].startswith("tvd:")], manifest["model"].get("why")]
    assert len(private) > 5 and not [figure for figure in private if figure and figure in text]
    assert not [r["metric"] for r in manifest["gate"]["rules"] if f"{r['metric']} = " in card]  # no rule's value
    code, _, stderr = tabsynth_cli("export", released, tmp_path / "shared" / "again.csv")
    assert code == 2 and "DATA_CARD.md already exists" in stderr and not (tmp_path / "shared" / "again.csv").exists()
