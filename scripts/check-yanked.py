#!/usr/bin/env python3
"""Fails if any crates.io package pinned in Cargo.lock is a yanked version.

Asks the crates.io sparse index (one small HTTPS request per package, 8 at a time, each
with a timeout, a transient network error tried again up to 4 times) for every `registry+`
package in the lock file. cargo-deny does the same
check only inside its advisories check, which cannot run without the RustSec database.

An index that cannot be reached is a failure, not a pass: a supply-chain check that
passes when it could not look is no check. Exit codes: 0 nothing yanked, 1 a yanked
version (listed), 2 the index could not be asked (says which package and why).

Usage: scripts/check-yanked.py [Cargo.lock ...]
"""

import concurrent.futures
import json
import re
import sys
import time
import urllib.error
import urllib.request

INDEX = "https://index.crates.io"
CRATES_IO = "registry+https://github.com/rust-lang/crates.io-index"
TIMEOUT_S = 15
WORKERS = 8
ATTEMPTS = 4


def registry_packages(lock_text):
    """(name, version) of every crates.io package in a Cargo.lock."""
    out = set()
    for block in lock_text.split("[[package]]")[1:]:
        fields = dict(re.findall(r'^(\w+) = "([^"]*)"$', block, re.MULTILINE))
        if fields.get("source") == CRATES_IO:
            out.add((fields["name"], fields["version"]))
    return sorted(out)


def index_path(name):
    """The sparse index's path of a crate (the registry index layout)."""
    n = name.lower()
    if len(n) <= 2:
        return f"{len(n)}/{n}"
    if len(n) == 3:
        return f"3/{n[0]}/{n}"
    return f"{n[0:2]}/{n[2:4]}/{n}"


def fetch_index(name):
    """The index entry of `name`. A transient failure (a name lookup, a reset, a timeout)
    is tried again, at most ATTEMPTS times with a growing pause; a 404 or a bad answer is
    not retried. What still fails is the caller's failure, never a pass."""
    req = urllib.request.Request(
        f"{INDEX}/{index_path(name)}", headers={"User-Agent": "fedq-ci check-yanked"}
    )
    for attempt in range(ATTEMPTS):
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
                return resp.read().decode("utf-8")
        except urllib.error.HTTPError:
            raise
        except (urllib.error.URLError, OSError):
            if attempt + 1 == ATTEMPTS:
                raise
            time.sleep(2 ** attempt)
    raise OSError("unreachable")


def yanked_versions(name):
    """The set of yanked versions of `name`, from the index."""
    body = fetch_index(name)
    return {
        entry["vers"]
        for entry in map(json.loads, filter(None, body.splitlines()))
        if entry.get("yanked")
    }


def main(paths):
    packages = set()
    for path in paths:
        with open(path, encoding="utf-8") as f:
            packages.update(registry_packages(f.read()))
    if not packages:
        print("check-yanked: no crates.io packages found in " + ", ".join(paths))
        return 2
    names = sorted({name for name, _ in packages})
    yanked = {}
    errors = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = {pool.submit(yanked_versions, n): n for n in names}
        for fut in concurrent.futures.as_completed(futures):
            name = futures[fut]
            try:
                yanked[name] = fut.result()
            except (urllib.error.URLError, OSError, ValueError) as e:
                errors.append(f"{name}: {e}")
    if errors:
        print(
            f"check-yanked: cannot ask the crates.io index about {len(errors)} of "
            f"{len(names)} crates (first: {sorted(errors)[0]}); failing rather than "
            "passing unchecked"
        )
        return 2
    bad = sorted((n, v) for n, v in packages if v in yanked.get(n, set()))
    for n, v in bad:
        print(f"check-yanked: {n} {v} is yanked on crates.io; run `cargo update -p {n}`")
    if bad:
        return 1
    print(f"check-yanked: {len(packages)} crates.io packages, none yanked")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["Cargo.lock"]))
