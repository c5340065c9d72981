-- GUE (draft-ietf-intarea-gue) variant 0 for tshark 4.0, which has no GUE dissector.
-- Only reads the 4-byte base header and hands the payload to tshark's own IPv4 / IPv6
-- dissectors, so the inner headers are still judged by Wireshark's code.
local gue = Proto("gue", "Generic UDP Encapsulation")
local f_ver = ProtoField.uint8("gue.version", "Version", base.DEC)
local f_hlen = ProtoField.uint8("gue.hlen", "Header length (words)", base.DEC)
local f_proto = ProtoField.uint8("gue.proto", "Protocol", base.DEC)
local f_flags = ProtoField.uint16("gue.flags", "Flags", base.HEX)
gue.fields = { f_ver, f_hlen, f_proto, f_flags }

function gue.dissector(buf, pinfo, tree)
  if buf:len() < 4 then return 0 end
  local first = buf(0, 1):uint()
  local version = bit32.rshift(first, 6)
  local hlen = bit32.band(first, 0x1f)
  local t = tree:add(gue, buf(0, 4 + hlen * 4))
  t:add(f_ver, buf(0, 1), version)
  t:add(f_hlen, buf(0, 1), hlen)
  t:add(f_proto, buf(1, 1))
  t:add(f_flags, buf(2, 2))
  pinfo.cols.protocol = "GUE"
  local proto = buf(1, 1):uint()
  local inner = buf(4 + hlen * 4):tvb()
  if proto == 4 then Dissector.get("ip"):call(inner, pinfo, tree)
  elseif proto == 41 then Dissector.get("ipv6"):call(inner, pinfo, tree) end
  return buf:len()
end

local port = tonumber(os.getenv("LVS_GUE_PORT") or "6080")
DissectorTable.get("udp.port"):add(port, gue)
