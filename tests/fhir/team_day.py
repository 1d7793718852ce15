"""A community team's day in Baton, by fhirpy (PyPI), a FHIR client nobody
here wrote: search the inbox, read each patient and referral, accept one,
reject one, ask about one; then the ward's system reads the encounter and
answers the question. Run by tests/tests/fhir.rs as

    python team_day.py BASE_URL TEAM_TOKEN WARD_TOKEN TEAM

and prints one JSON object saying what it saw and did.
"""

import datetime
import json
import sys

from fhirpy import SyncFHIRClient


def main() -> None:
    base, team_token, ward_token, team_code = sys.argv[1:5]
    team = SyncFHIRClient(base, authorization=f"Bearer {team_token}")
    ward = SyncFHIRClient(base, authorization=f"Bearer {ward_token}")
    seen = {}

    inbox = (
        team.resources("Task")
        .search(owner=f"Organization/{team_code}", status="requested")
        .limit(2)
        .fetch_all()
    )
    seen["inbox"] = len(inbox)
    inbox.sort(key=lambda t: t["authoredOn"])

    patients = [t["for"].to_resource() for t in inbox]
    seen["patients"] = [p["identifier"][0]["value"] for p in patients]
    requests = [t["focus"].to_resource() for t in inbox]
    seen["services"] = [r["code"]["coding"][0]["code"] for r in requests]

    accept, reject, ask = inbox[0], inbox[1], inbox[2]
    accept["status"] = "accepted"
    accept["output"] = [{
        "type": {"coding": [{"code": "planned-start"}]},
        "valueDate": datetime.date.today().isoformat(),
    }]
    accept.save()
    reject["status"] = "rejected"
    reject["statusReason"] = {"text": "outside our area"}
    reject.save()
    ask["status"] = "on-hold"
    ask["statusReason"] = {"text": "Is there a key safe?"}
    ask.save()
    seen["after"] = [team.reference("Task", t["id"]).to_resource()["status"] for t in inbox]

    # The ward's system: the encounter behind the question, and its answer.
    encounter = ward.reference(reference=ask["encounter"]["reference"]).to_resource()
    seen["encounter"] = {"status": encounter["status"], "class": encounter["class"]["code"]}
    asked = ward.reference("Task", ask["id"]).to_resource()
    asked["status"] = "received"
    asked["input"] = asked.get("input", []) + [{"type": {"text": "answer"}, "valueString": "Yes, 1234"}]
    asked.save()
    seen["answered"] = team.reference("Task", ask["id"]).to_resource()["status"]

    print(json.dumps(seen))


if __name__ == "__main__":
    main()
