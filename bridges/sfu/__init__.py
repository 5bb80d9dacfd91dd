"""The SFU proper: rooms, publish/subscribe connections, RTP forwarder, relays."""
