// IPVS's TCP state machine (net/netfilter/ipvs/ip_vs_proto_tcp.c of a current kernel,
// Linux 6.x): states, the three transition tables (INPUT, OUTPUT for NAT replies,
// INPUT-ONLY for DR / TUN, which never see replies) in two sets, tcp_states and
// tcp_states_dos (secure_tcp), and the per-state timeouts that `ipvsadm --set` changes.
// Active connections are those in tcp_state_active_table: ESTABLISHED, SYN_SENT, SYN_RECV
// and SYNACK ("ipvs: count pre-established TCP states as active"); an INPUT ack from NONE
// goes to ESTABLISHED. Older kernels and forks (DPVS, Alibaba LVS) differ on both.

export const S_NONE: u32 = 0;
export const S_ESTABLISHED: u32 = 1;
export const S_SYN_SENT: u32 = 2;
export const S_SYN_RECV: u32 = 3;
export const S_FIN_WAIT: u32 = 4;
export const S_TIME_WAIT: u32 = 5;
export const S_CLOSE: u32 = 6;
export const S_CLOSE_WAIT: u32 = 7;
export const S_LAST_ACK: u32 = 8;
export const S_LISTEN: u32 = 9;
export const S_SYNACK: u32 = 10;
export const TCP_STATE_COUNT: u32 = 11;
/** The one UDP (and other datagram) state, numbered after the TCP ones. */
export const S_UDP: u32 = 11;
export const STATE_COUNT: u32 = 12;

export const DIR_INPUT: u32 = 0;
export const DIR_OUTPUT: u32 = 1;
export const DIR_INPUT_ONLY: u32 = 2;

// Rows: direction * 4 + flag (syn, fin, ack, rst); columns: current state. tcp_states:
// prettier-ignore
const TRANSITIONS: StaticArray<u8> = [
  // INPUT        NO ES SS SR FW TW CL CW LA LI SA
  /* syn */ 3, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3,
  /* fin */ 6, 7, 2, 5, 5, 5, 6, 7, 8, 9, 5,
  /* ack */ 1, 1, 2, 1, 4, 5, 6, 7, 6, 9, 1,
  /* rst */ 6, 6, 6, 3, 6, 6, 6, 6, 8, 9, 3,
  // OUTPUT
  /* syn */ 2, 1, 2, 3, 2, 2, 2, 2, 2, 9, 3,
  /* fin */ 5, 4, 2, 5, 4, 5, 6, 5, 8, 9, 5,
  /* ack */ 1, 1, 2, 1, 4, 5, 6, 7, 8, 1, 1,
  /* rst */ 6, 6, 2, 6, 6, 5, 6, 6, 6, 6, 6,
  // INPUT-ONLY
  /* syn */ 3, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3,
  /* fin */ 6, 4, 2, 5, 4, 5, 6, 7, 8, 9, 5,
  /* ack */ 1, 1, 2, 1, 4, 5, 6, 7, 6, 9, 1,
  /* rst */ 6, 6, 6, 3, 6, 6, 6, 6, 8, 9, 6,
];

// tcp_states_dos, used while secure_tcp is in force: a client's ack does not promote
// SYN_RECV (only the real server's reply does, in NAT), and SYNACK is held on input.
// prettier-ignore
const TRANSITIONS_DOS: StaticArray<u8> = [
  // INPUT        NO ES SS SR FW TW CL CW LA LI SA
  /* syn */ 3, 1, 1, 3, 3, 3, 3, 3, 3, 3, 10,
  /* fin */ 6, 7, 2, 5, 5, 5, 6, 7, 8, 9, 10,
  /* ack */ 1, 1, 2, 3, 4, 5, 6, 7, 6, 9, 10,
  /* rst */ 6, 6, 6, 3, 6, 6, 6, 6, 8, 9, 6,
  // OUTPUT
  /* syn */ 2, 1, 2, 10, 2, 2, 2, 2, 2, 9, 10,
  /* fin */ 5, 4, 2, 5, 4, 5, 6, 5, 8, 9, 5,
  /* ack */ 1, 1, 2, 1, 4, 5, 6, 7, 8, 1, 1,
  /* rst */ 6, 6, 2, 6, 6, 5, 6, 6, 6, 6, 6,
  // INPUT-ONLY
  /* syn */ 10, 1, 1, 3, 10, 10, 10, 10, 10, 10, 10,
  /* fin */ 6, 4, 2, 5, 4, 5, 6, 7, 8, 9, 5,
  /* ack */ 1, 1, 2, 1, 4, 5, 6, 7, 6, 9, 1,
  /* rst */ 6, 6, 6, 3, 6, 6, 6, 6, 8, 9, 6,
];

/** Whether the secure_tcp table (tcp_states_dos) is in force; set by the defence logic. */
let secureTable: bool = false;
export function useSecureTcpTable(on: bool): void {
  secureTable = on;
}
export function secureTcpTableInForce(): bool {
  return secureTable;
}

// TCP flag bits in the header's flags byte.
const TH_FIN: u32 = 0x01;
const TH_SYN: u32 = 0x02;
const TH_RST: u32 = 0x04;
const TH_ACK: u32 = 0x10;

/** Row within a direction for the flags that count: rst, then syn, fin, ack; -1 for none. */
@inline function flagRow(flags: u32): i32 {
  if (flags & TH_RST) return 3;
  if (flags & TH_SYN) return 0;
  if (flags & TH_FIN) return 1;
  if (flags & TH_ACK) return 2;
  return -1;
}

/** Next TCP state; a segment with none of the four flags moves the kernel to CLOSE. */
export function tcpNextState(direction: u32, tcpFlags: u32, state: u32): u32 {
  const row = flagRow(tcpFlags);
  if (row < 0 || state >= TCP_STATE_COUNT) return S_CLOSE;
  const i = (direction * 4 + <u32>row) * TCP_STATE_COUNT + state;
  return <u32>(secureTable ? unchecked(TRANSITIONS_DOS[i]) : unchecked(TRANSITIONS[i]));
}

/** Whether a connection in this state counts in ActiveConn (else InActConn): tcp_state_active_table. */
@inline export function isActiveState(state: u32): bool {
  return state == S_ESTABLISHED || state == S_SYN_SENT || state == S_SYN_RECV || state == S_SYNACK;
}

// Timeouts in milliseconds, by state; UDP last. Defaults are the kernel's.
const timeouts = new StaticArray<u32>(STATE_COUNT);

export function resetTimeouts(): void {
  unchecked((timeouts[S_NONE] = 2_000));
  unchecked((timeouts[S_ESTABLISHED] = 900_000));
  unchecked((timeouts[S_SYN_SENT] = 120_000));
  unchecked((timeouts[S_SYN_RECV] = 60_000));
  unchecked((timeouts[S_FIN_WAIT] = 120_000));
  unchecked((timeouts[S_TIME_WAIT] = 120_000));
  unchecked((timeouts[S_CLOSE] = 10_000));
  unchecked((timeouts[S_CLOSE_WAIT] = 60_000));
  unchecked((timeouts[S_LAST_ACK] = 30_000));
  unchecked((timeouts[S_LISTEN] = 120_000));
  unchecked((timeouts[S_SYNACK] = 120_000));
  unchecked((timeouts[S_UDP] = 300_000));
}
resetTimeouts();

@inline export function stateTimeout(state: u32): u32 {
  return state < STATE_COUNT ? unchecked(timeouts[state]) : 2_000;
}

/** Sets one state's timeout (ms); false for an unknown state or zero. */
export function setStateTimeout(state: u32, ms: u32): bool {
  if (state >= STATE_COUNT || ms == 0) return false;
  unchecked((timeouts[state] = ms));
  return true;
}
