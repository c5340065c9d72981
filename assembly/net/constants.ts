// Protocol numbers, EtherTypes and header sizes used across the packet layer.

export const ETH_HLEN: u32 = 14;
export const VLAN_HLEN: u32 = 4;
export const ETHERTYPE_IPV4: u32 = 0x0800;
export const ETHERTYPE_IPV6: u32 = 0x86dd;
export const ETHERTYPE_VLAN: u32 = 0x8100;
export const ETHERTYPE_QINQ: u32 = 0x88a8;
export const MAX_VLAN_TAGS: u32 = 2;

export const IPV4_HLEN: u32 = 20;
export const IPV6_HLEN: u32 = 40;
export const MAX_IPV6_EXT_HEADERS: u32 = 8;

export const PROTO_HOPOPTS: u32 = 0;
export const PROTO_ICMP: u32 = 1;
export const PROTO_IPIP: u32 = 4;
export const PROTO_TCP: u32 = 6;
export const PROTO_UDP: u32 = 17;
export const PROTO_IPV6: u32 = 41;
export const PROTO_ROUTING: u32 = 43;
export const PROTO_FRAGMENT: u32 = 44;
export const PROTO_GRE: u32 = 47;
export const PROTO_ESP: u32 = 50;
export const PROTO_AH: u32 = 51;
export const PROTO_ICMPV6: u32 = 58;
export const PROTO_NONE: u32 = 59;
export const PROTO_DSTOPTS: u32 = 60;
export const PROTO_SCTP: u32 = 132;

export const TCP_HLEN: u32 = 20;
export const UDP_HLEN: u32 = 8;
export const ICMP_HLEN: u32 = 8;
export const GRE_HLEN: u32 = 4;
export const GUE_HLEN: u32 = 4;

/** Link types of a packet slot: what the first byte of the packet is. */
export const LINK_RAW_IP: u32 = 0;
export const LINK_ETHERNET: u32 = 1;

// ICMPv4 types
export const ICMP_ECHO_REPLY: u32 = 0;
export const ICMP_DEST_UNREACH: u32 = 3;
export const ICMP_SOURCE_QUENCH: u32 = 4;
export const ICMP_ECHO_REQUEST: u32 = 8;
export const ICMP_TIME_EXCEEDED: u32 = 11;
export const ICMP_PARAMETER_PROBLEM: u32 = 12;
export const ICMP_CODE_PORT_UNREACH: u32 = 3;
export const ICMP_CODE_FRAG_NEEDED: u32 = 4;

// ICMPv6 types
export const ICMPV6_DEST_UNREACH: u32 = 1;
export const ICMPV6_PACKET_TOO_BIG: u32 = 2;
export const ICMPV6_TIME_EXCEEDED: u32 = 3;
export const ICMPV6_PARAM_PROBLEM: u32 = 4;
export const ICMPV6_ECHO_REQUEST: u32 = 128;
export const ICMPV6_ECHO_REPLY: u32 = 129;
export const ICMPV6_CODE_PORT_UNREACH: u32 = 4;
