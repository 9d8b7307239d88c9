"""Reading records that a schema registry's serializers wrote (Avro, Protobuf, JSON Schema)
or that per-topic schema files describe: the wire format, the registry client, the
decoders and the per-cluster decoding the tap runs."""
