"""Checks on the installed wheel, run by scripts/check-wheel.sh from a folder that holds
nothing of the checkout (only this file and one example DAG), in a venv where the
provider was installed from its wheel. Exits non-zero, saying what failed."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import distribution, entry_points
from pathlib import Path


def check(condition: bool, what: str) -> None:
    print(("ok    " if condition else "FAIL  ") + what, flush=True)
    if not condition:
        sys.exit(1)


def airflow(*args: str) -> str:
    done = subprocess.run(["airflow", *args], capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:])
        check(False, f"airflow {' '.join(args)}")
    return done.stdout


def main() -> None:
    checkout = Path(sys.argv[1]).resolve()
    import airflow_provider_cascade as package

    where = Path(package.__file__).resolve().parent
    check(
        Path(sys.prefix).resolve() in where.parents and where != checkout / package.__name__,
        f"the provider is imported from the venv's site-packages ({where})",
    )
    check((where / "py.typed").is_file(), "py.typed is installed (PEP 561)")
    dist = distribution("airflow-provider-cascade")
    check(dist.version == package.__version__, f"version {dist.version}")
    check(any(p.name == "LICENSE" for p in dist.files or ()), "the LICENSE file is in the wheel")
    plugins = {e.name: e.value for e in entry_points(group="airflow.plugins")}
    check(plugins.get("cascade", "").endswith(":CascadePlugin"), "the airflow.plugins entry point")

    airflow("db", "migrate")
    providers = json.loads(airflow("providers", "list", "-o", "json"))
    check(
        any(p["package_name"] == "airflow-provider-cascade" for p in providers),
        "airflow providers list shows it",
    )
    hooks = airflow("providers", "hooks", "-o", "json")
    check('"cascade"' in hooks, "the cascade connection type")
    loaded = airflow("plugins", "-o", "json")
    check('"cascade"' in loaded, "airflow plugins loads the Cascade plugin")
    from airflow.providers_manager import ProvidersManager

    check("cascade" in ProvidersManager().taskflow_decorators, "@task.cascade is registered")
    for script in ("cascade-sandbox", "cascade-replies"):
        done = subprocess.run([script, "--help"], capture_output=True, text=True)
        check(done.returncode == 0 and "usage" in done.stdout, f"{script} --help")

    from airflow_provider_cascade.sandbox.client import Sandbox

    with Sandbox.start(api_key="wheel-check-key") as sandbox:
        sandbox.set_env()
        airflow("dags", "test", "otp_flashcall")
        accepted = sandbox.stats()["accepted"]
    check(accepted == 1, f"example otp_flashcall ran end to end ({accepted} accepted)")


if __name__ == "__main__":
    main()
