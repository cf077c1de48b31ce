"""A fake Meshtastic node's settings and the answers its firmware modules give, without any I/O.

``NodeSettings`` holds what a radio keeps in flash (``LocalConfig``, ``LocalModuleConfig``, eight channels,
the owner) and answers ``AdminMessage`` requests as the firmware's ``AdminModule`` does: getters return
the stored part, setters change it so the next handshake and the next getter report the new value
(``meshtastic --set lora.hop_limit 5`` then ``--get lora.hop_limit`` answers 5). The request
answers of the other modules live here too:

* ``TraceRouteModule``: relays append their node number and the SNR they heard (``route`` /
  ``snr_towards`` on the way out, ``route_back`` / ``snr_back`` on the way back, SNR in quarter dB), the
  destination and finally the originator append only the SNR, the destination replies with the
  ``RouteDiscovery`` it received;
* ``PositionModule``: a request is answered with the node's own position;
* ``DeviceTelemetryModule``: a request is answered with ``device_metrics``;
* ``NodeInfoModule``: a request is answered with the node's ``User``.

``response_hop_limit`` is ``RoutingModule::getHopLimitForResponse``: the hops the request used plus a
margin of two, never more than the configured limit unless the request needed more.
"""

from __future__ import annotations

import time

from meshtastic.protobuf import (
    admin_pb2,
    channel_pb2,
    config_pb2,
    localonly_pb2,
    mesh_pb2,
    module_config_pb2,
    portnums_pb2,
    telemetry_pb2,
)

PortNum = portnums_pb2.PortNum
CONFIG_PARTS = [f.name for f in config_pb2.Config.DESCRIPTOR.oneofs_by_name["payload_variant"].fields]
"""``Config`` variants in ``AdminMessage.ConfigType`` order (DEVICE_CONFIG = 0, ...)."""
MODULE_PARTS = [
    f.name for f in module_config_pb2.ModuleConfig.DESCRIPTOR.oneofs_by_name["payload_variant"].fields
]
"""``ModuleConfig`` variants in ``AdminMessage.ModuleConfigType`` order (MQTT_CONFIG = 0, ...)."""
FIRMWARE_VERSION = "2.5.20.beredt-sim"
ANSWERED_PORTS = frozenset(
    {PortNum.TRACEROUTE_APP, PortNum.POSITION_APP, PortNum.TELEMETRY_APP, PortNum.NODEINFO_APP}
)
"""Ports whose module answers a ``want_response`` request (``NodeSettings.answer``)."""


class NodeSettings:
    """What one node keeps in flash, and its admin answers."""

    def __init__(self, node_num: int, long_name: str, *, preset: str, hop_limit: int) -> None:
        self.node_num = node_num
        self.owner = mesh_pb2.User(
            id=f"!{node_num:08x}", long_name=long_name, short_name=f"{node_num & 0xFFFF:04x}"
        )
        self.config = localonly_pb2.LocalConfig()
        for part in CONFIG_PARTS:
            if part in localonly_pb2.LocalConfig.DESCRIPTOR.fields_by_name:
                getattr(self.config, part).SetInParent()
        lora = self.config.lora
        lora.use_preset = True
        lora.modem_preset = config_pb2.Config.LoRaConfig.ModemPreset.Value(preset)
        lora.region = config_pb2.Config.LoRaConfig.RegionCode.EU_868
        lora.hop_limit = hop_limit
        lora.tx_enabled = True
        self.module_config = localonly_pb2.LocalModuleConfig()
        for part in self.module_parts():
            getattr(self.module_config, part).SetInParent()
        self.channels = [
            channel_pb2.Channel(
                index=index,
                role=channel_pb2.Channel.Role.PRIMARY if index == 0 else channel_pb2.Channel.Role.DISABLED,
                settings=channel_pb2.ChannelSettings(psk=b"\x01") if index == 0 else None,
            )
            for index in range(8)
        ]
        self.latitude, self.longitude, self.altitude = 56.1572, 10.2107, 42
        self.booted = time.monotonic()

    @staticmethod
    def module_parts() -> list[str]:
        return [p for p in MODULE_PARTS if p in localonly_pb2.LocalModuleConfig.DESCRIPTOR.fields_by_name]

    @property
    def hop_limit(self) -> int:
        return int(self.config.lora.hop_limit)

    def metadata(self) -> mesh_pb2.DeviceMetadata:
        return mesh_pb2.DeviceMetadata(
            firmware_version=FIRMWARE_VERSION,
            device_state_version=23,
            hasBluetooth=True,
            hasPKC=True,
            role=self.config.device.role,
        )

    def node_info(self) -> mesh_pb2.NodeInfo:
        return mesh_pb2.NodeInfo(num=self.node_num, user=self.owner)

    def handshake_parts(self) -> list[mesh_pb2.FromRadio]:
        """Channels, config and module config as ``PhoneAPI`` sends them after metadata."""
        out = [mesh_pb2.FromRadio(channel=channel) for channel in self.channels]
        for part in CONFIG_PARTS:
            if part in localonly_pb2.LocalConfig.DESCRIPTOR.fields_by_name:
                config = config_pb2.Config()
                getattr(config, part).CopyFrom(getattr(self.config, part))
                out.append(mesh_pb2.FromRadio(config=config))
        for part in self.module_parts():
            module = module_config_pb2.ModuleConfig()
            getattr(module, part).CopyFrom(getattr(self.module_config, part))
            out.append(mesh_pb2.FromRadio(moduleConfig=module))
        return out

    # -- AdminModule -----------------------------------------------------------------------------

    def admin(self, request: admin_pb2.AdminMessage) -> admin_pb2.AdminMessage | None:
        """The response to ``request``, or None for a setter or anything that has no response."""
        match request.WhichOneof("payload_variant"):
            case "get_config_request":
                config = config_pb2.Config()
                part = CONFIG_PARTS[request.get_config_request]
                if part in localonly_pb2.LocalConfig.DESCRIPTOR.fields_by_name:
                    getattr(config, part).CopyFrom(getattr(self.config, part))
                else:
                    getattr(config, part).SetInParent()
                return admin_pb2.AdminMessage(get_config_response=config)
            case "get_module_config_request":
                module = module_config_pb2.ModuleConfig()
                part = MODULE_PARTS[request.get_module_config_request]
                if part in localonly_pb2.LocalModuleConfig.DESCRIPTOR.fields_by_name:
                    getattr(module, part).CopyFrom(getattr(self.module_config, part))
                else:
                    getattr(module, part).SetInParent()
                return admin_pb2.AdminMessage(get_module_config_response=module)
            case "get_channel_request":  # channel index plus one, so that index 0 is not the default
                index = request.get_channel_request - 1
                if not 0 <= index < len(self.channels):
                    return None
                return admin_pb2.AdminMessage(get_channel_response=self.channels[index])
            case "get_owner_request":
                return admin_pb2.AdminMessage(get_owner_response=self.owner)
            case "get_device_metadata_request":
                return admin_pb2.AdminMessage(get_device_metadata_response=self.metadata())
            case "get_canned_message_module_messages_request":
                return admin_pb2.AdminMessage(get_canned_message_module_messages_response="")
            case "get_ringtone_request":
                return admin_pb2.AdminMessage(get_ringtone_response="")
            case "set_config":
                part = request.set_config.WhichOneof("payload_variant")
                if part in localonly_pb2.LocalConfig.DESCRIPTOR.fields_by_name:
                    getattr(self.config, part).CopyFrom(getattr(request.set_config, part))
            case "set_module_config":
                part = request.set_module_config.WhichOneof("payload_variant")
                if part in localonly_pb2.LocalModuleConfig.DESCRIPTOR.fields_by_name:
                    getattr(self.module_config, part).CopyFrom(getattr(request.set_module_config, part))
            case "set_owner":
                owner = request.set_owner
                if owner.long_name.strip():
                    self.owner.long_name = owner.long_name
                if owner.short_name.strip():
                    self.owner.short_name = owner.short_name
            case "set_channel":
                if 0 <= request.set_channel.index < len(self.channels):
                    self.channels[request.set_channel.index].CopyFrom(request.set_channel)
            case "set_fixed_position":
                self.latitude = request.set_fixed_position.latitude_i / 1e7
                self.longitude = request.set_fixed_position.longitude_i / 1e7
                self.altitude = request.set_fixed_position.altitude
        return None

    # -- answers to requests from the mesh -------------------------------------------------------

    def answer(self, request: mesh_pb2.MeshPacket) -> tuple[int, bytes] | None:
        """The (port, payload) a module replies to a ``want_response`` request, or None."""
        match request.decoded.portnum:
            case PortNum.TRACEROUTE_APP:
                return PortNum.TRACEROUTE_APP, request.decoded.payload  # the route as it reached us
            case PortNum.POSITION_APP:
                return PortNum.POSITION_APP, self.position().SerializeToString()
            case PortNum.TELEMETRY_APP:
                return PortNum.TELEMETRY_APP, self.telemetry().SerializeToString()
            case PortNum.NODEINFO_APP:
                return PortNum.NODEINFO_APP, self.owner.SerializeToString()
        return None

    def position(self) -> mesh_pb2.Position:
        return mesh_pb2.Position(
            latitude_i=round(self.latitude * 1e7),
            longitude_i=round(self.longitude * 1e7),
            altitude=self.altitude,
            time=int(time.time()),
            precision_bits=32,
        )

    def telemetry(self) -> telemetry_pb2.Telemetry:
        metrics = telemetry_pb2.DeviceMetrics(
            battery_level=101,  # the firmware's value for "powered, no battery"
            voltage=5.0,
            channel_utilization=3.5,
            air_util_tx=0.4,
            uptime_seconds=int(time.monotonic() - self.booted),
        )
        return telemetry_pb2.Telemetry(time=int(time.time()), device_metrics=metrics)

    def response_hop_limit(self, request: mesh_pb2.MeshPacket) -> int:
        configured = self.hop_limit
        if request.hop_start:
            used = (
                configured if request.hop_start < request.hop_limit else request.hop_start - request.hop_limit
            )
            if used > configured:
                return used
            if used + 2 < configured:
                return used + 2
        return configured


def record_hop(packet: mesh_pb2.MeshPacket, node_num: int, *, snr_only: bool) -> None:
    """``TraceRouteModule::alterReceivedProtobuf`` on ``packet`` as ``node_num`` received it."""
    if packet.decoded.portnum != PortNum.TRACEROUTE_APP:
        return
    route = mesh_pb2.RouteDiscovery.FromString(packet.decoded.payload)
    towards = not packet.decoded.request_id
    snrs, nodes = (route.snr_towards, route.route) if towards else (route.snr_back, route.route_back)
    snrs.append(round(packet.rx_snr * 4))
    if not snr_only:
        nodes.append(node_num)
    packet.decoded.payload = route.SerializeToString()
