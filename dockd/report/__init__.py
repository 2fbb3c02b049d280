"""Reports to the outside: MQTT publisher and outbox, bay LEDs, console view."""
