# services.hyperhive, the ports of this host (imported by module.nix): every
# port the hive's own services listen on must stay clear of the agents' web UI
# ports (the manager's 8000, 8100-8999 for the others: nix/lib.nix agentPort)
# and of each other. A clash is an evaluation error naming both and the option
# to change: nothing would bind it at run time, and nothing would say why.
#
# To check another port, add it to `listeners`.
{ config, lib, ... }:
let
  hlib = import ./lib.nix;
  cfg = config.services.hyperhive;

  agentLow = hlib.agentPortBase;
  agentHigh = hlib.agentPortBase + hlib.agentPortRange - 1;
  agentRange = "${toString agentLow}-${toString agentHigh}";

  # What listens here, and the option that says where.
  listeners = [
    {
      option = "services.hyperhive.dashboardPort";
      what = "the dashboard";
      port = cfg.dashboardPort;
    }
  ]
  ++ lib.optionals cfg.nats.enable [
    {
      option = "services.nats.port";
      what = "NATS";
      port = config.services.nats.port;
    }
    {
      option = "services.hyperhive.nats.monitorPort";
      what = "NATS monitoring";
      port = cfg.nats.monitorPort;
    }
  ]
  ++ lib.optionals (cfg.nats.enable && cfg.nats.cluster.name != null) [
    {
      option = "services.hyperhive.nats.cluster.port";
      what = "NATS cluster routes";
      port = cfg.nats.cluster.port;
    }
  ];

  # What is wrong with a port of ours, or null.
  problem =
    port:
    if port == 0 then
      "is no fixed port (nothing could find the service)"
    else if port == hlib.managerPort then
      "clashes with the manager agent's web UI port (${toString hlib.managerPort})"
    else if port >= agentLow && port <= agentHigh then
      "clashes with the agents' web UI ports (${agentRange}: 8100 + FNV-1a(name) mod 900, for agents declared or spawned later)"
    else
      null;

  reserved = map (l: {
    assertion = problem l.port == null;
    message = "${l.option} = ${toString l.port} (${l.what}) ${
      if problem l.port == null then "is fine" else problem l.port
    }: pick a port outside ${toString hlib.managerPort} and ${agentRange}, e.g. its default.";
  }) listeners;

  pairs = lib.concatLists (
    lib.imap0 (i: a: map (b: { inherit a b; }) (lib.drop (i + 1) listeners)) listeners
  );
  shared = map (p: {
    assertion = p.a.port != p.b.port;
    message = "${p.a.option} and ${p.b.option} are both ${toString p.a.port} (${p.a.what} and ${p.b.what}): give each its own port.";
  }) pairs;
in
{
  config = lib.mkIf cfg.enable { assertions = reserved ++ shared; };
}
