#!/usr/bin/env python3
"""Ask an agency's fedq gateway one question, written from the OpenAPI document alone.

Only Python's standard library: an app holds a bearer token from the gateway's operator
(`fedq gateway add-app`) and the CA that signed the gateway's TLS certificate. The body is
the document's `AppQuery`; the 200 answer is a `ConcludedAnswer`; every error is an RFC
9457 problem document whose `type` the document enumerates.

    python3 docs/api/python/ask_gateway.py --gateway https://localhost:8444 \
        --ca gateway/gateway-ca.crt --token @gateway/licensing-portal.token \
        --subject 430102199001011234 --purpose administrative-licensing \
        --legal-basis 行政许可法 --case-reference "长市监许〔2026〕123号" --view blacklist-check

Prints the answer as JSON (with --json) or a few readable lines; exits 0 when answered,
1 on a refusal (with its kind and what the policy accepts), 2 on bad arguments.
"""

import argparse
import http.client
import json
import ssl
import sys
import urllib.parse
from pathlib import Path

DOCUMENT = Path(__file__).resolve().parents[1] / "openapi.json"


def load_document(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def app_query(args, document):
    """The AppQuery body, checked against the document's required fields."""
    body = {"subject": args.subject, "purpose": args.purpose}
    for key, value in [
        ("legal_basis", args.legal_basis),
        ("case_reference", args.case_reference),
        ("consent", args.consent),
        ("view", args.view),
    ]:
        if value is not None:
            body[key] = value
    if args.dataset:
        body["datasets"] = args.dataset
    schema = document["components"]["schemas"]["AppQuery"]
    missing = [k for k in schema.get("required", []) if k not in body]
    unknown = [k for k in body if k not in schema["properties"]]
    if missing or unknown:
        raise SystemExit(f"error: the body lacks {missing} or has unknown fields {unknown}")
    return body


def plain(value):
    """A released value, as the document's AnswerValue describes it."""
    if isinstance(value, dict):
        if "currency" in value:
            return f"{value['value']} {value['currency']}"
        if "bucket" in value:
            return f"range {value['bucket']}"
        if "masked" in value:
            return value["masked"]
    return str(value)


def show(answer):
    view = answer.get("view_result")
    if view:
        kind = view["kind"]
        if kind == "blacklist":
            print(f"{kind}: {len(view['listings'])} listing(s)")
            for l in view["listings"]:
                print(f"  {l['list']} since {plain(l['since'])}")
        elif kind == "green-channel":
            print(f"{kind}: {view['verdict']} — {view['reason']}")
        elif kind == "credit-report":
            for s in view["sections"]:
                print(f"  {s['label']}: {len(s['records'])} record(s)")
                for r in s["records"]:
                    print("    " + ", ".join(f"{k}={plain(v)}" for k, v in sorted(r.items())))
        elif kind == "integrity-score":
            print(f"{kind}: {view['points']} points, grade {view.get('grade')}")
        for u in view.get("unverified", []):
            print(f"  cannot confirm {u['dataset']}: {u['status']}")
    for name, result in sorted(answer.get("datasets", {}).items()):
        print(f"{name}: {len(result['records'])} record(s)")
        for r in result["records"]:
            print("  " + ", ".join(f"{k}={plain(v)}" for k, v in sorted(r.items())))
    for n in answer["nodes"]:
        print(f"  node {n['node']}: {n['status']}" + (f" ({n['reason']})" if n.get("reason") else ""))
    print(f"query {answer['query_id']} under policy {answer['policy_version']}; complete: {answer['complete']}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gateway", required=True, help="https://HOST:PORT of the agency's gateway")
    p.add_argument("--ca", required=True, help="the CA file that signed the gateway's certificate")
    p.add_argument("--token", required=True, help="the app's bearer token, or @FILE holding it")
    p.add_argument("--subject", required=True)
    p.add_argument("--purpose", required=True)
    p.add_argument("--legal-basis")
    p.add_argument("--case-reference")
    p.add_argument("--consent", help="a consent token, or @FILE holding it")
    p.add_argument("--view")
    p.add_argument("--dataset", action="append")
    p.add_argument("--document", default=str(DOCUMENT), help="the OpenAPI document")
    p.add_argument("--json", action="store_true", help="print the answer document as it came")
    args = p.parse_args()
    for name in ("token", "consent"):
        value = getattr(args, name)
        if value and value.startswith("@"):
            setattr(args, name, Path(value[1:]).read_text(encoding="utf-8").strip())

    document = load_document(args.document)
    url = urllib.parse.urlsplit(args.gateway)
    if url.scheme != "https" or not url.hostname:
        p.error("--gateway must be https://HOST:PORT")
    body = json.dumps(app_query(args, document)).encode("utf-8")
    tls = ssl.create_default_context(cafile=args.ca)
    conn = http.client.HTTPSConnection(url.hostname, url.port or 443, context=tls, timeout=30)
    conn.request(
        "POST",
        "/v1/query",
        body=body,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {args.token}"},
    )
    response = conn.getresponse()
    text = response.read().decode("utf-8")
    media = response.getheader("Content-Type", "")
    answer = json.loads(text) if text else {}
    if response.status != 200:
        kinds = document["components"]["schemas"]["Problem"]["properties"]["type"]["enum"]
        if media != "application/problem+json" or answer.get("type") not in kinds:
            print(f"error: {response.status} without a documented problem: {text[:200]}", file=sys.stderr)
            return 1
        print(f"refused ({answer['status']} {answer['type']}): {answer['detail']}", file=sys.stderr)
        if answer.get("accepted"):
            print(f"  accepted in `{answer.get('field')}`: {', '.join(answer['accepted'])}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(answer, ensure_ascii=False, indent=2))
    else:
        show(answer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
