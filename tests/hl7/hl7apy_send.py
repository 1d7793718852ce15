"""Builds ADT messages with hl7apy (PyPI) and sends them to Baton over MLLP;
prints each acknowledgement's MSA-1 and MSA-2, as hl7apy reads them back.

Usage: hl7apy_send.py PORT
Run by tests/tests/hl7_clients.rs (the venv of .ci/run's ensure_hl7_clients).
"""
import socket
import sys

from hl7apy.core import Message
from hl7apy.parser import parse_message

SB, EB, CR = b"\x0b", b"\x1c", b"\x0d"


def message(trigger, structure, control_id, location, prior=None):
    m = Message(structure, version="2.5")
    m.msh.msh_3 = "PAS"
    m.msh.msh_4 = "RBD"
    m.msh.msh_9 = "ADT^%s^%s" % (trigger, structure)
    m.msh.msh_10 = control_id
    m.msh.msh_11 = "P"
    m.evn.evn_2 = "20261201100000"
    m.evn.evn_5 = "APYUSER"
    # Two identifiers: a local one, then the NHS number.
    m.pid.pid_3 = "RBD555^^^RBD^MR"
    m.pid.add_field("pid_3").value = "9434765951^^^NHS^NH"
    m.pid.pid_5 = "Ng^Li"
    m.pid.pid_7 = "19700101"
    m.pv1.pv1_2 = "I"
    m.pv1.pv1_3 = location
    if prior:
        m.pv1.pv1_6 = prior
    m.pv1.pv1_19 = "V2001"
    if trigger == "A01":
        m.pv1.pv1_44 = "20261201095000"
    return m


def send(sock, m):
    sock.sendall(m.to_mllp().encode("utf-8"))
    data = b""
    while EB + CR not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise SystemExit("Baton closed the connection without an ACK")
        data += chunk
    text = data.strip(SB).split(EB)[0].decode("utf-8")
    ack = parse_message(text.replace("\n", "\r"), find_groups=False)
    print("%s %s" % (ack.msa.msa_1.value, ack.msa.msa_2.value))


def main():
    port = int(sys.argv[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        send(sock, message("A01", "ADT_A01", "APY0001", "W1^^20^POOLE"))
        send(sock, message("A02", "ADT_A02", "APY0002", "W2^^20^POOLE", "W1^^20^POOLE"))
        # The same transfer again (a lost ACK): acknowledged, nothing changes.
        send(sock, message("A02", "ADT_A02", "APY0002", "W2^^20^POOLE", "W1^^20^POOLE"))


main()
