package goldmanepb_test

import (
	"context"
	"testing"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/calico-pni/calico-pni/flows/goldmanepb"
)

// The committed Go code was generated from the committed .proto: the
// descriptor embedded in goldmane.pb.go equals the one a compiler makes of
// goldmane.proto now. When this fails, run `make proto`.
func TestGeneratedCodeMatchesProto(t *testing.T) {
	compiler := protocompile.Compiler{
		Resolver: &protocompile.SourceResolver{ImportPaths: []string{"../.."}},
	}
	files, err := compiler.Compile(context.Background(), "flows/goldmanepb/goldmane.proto")
	if err != nil {
		t.Fatalf("compiling goldmane.proto: %v", err)
	}
	fromSource := protodesc.ToFileDescriptorProto(files[0])
	generated := protodesc.ToFileDescriptorProto(goldmanepb.File_flows_goldmanepb_goldmane_proto)
	fromSource.SourceCodeInfo, generated.SourceCodeInfo = nil, nil
	if !proto.Equal(fromSource, generated) {
		t.Errorf("goldmane.pb.go was not generated from goldmane.proto as it is: run `make proto`\nproto: %v\ngo:    %v", fromSource, generated)
	}
}

// Goldmane's wire numbers, as goldmane/proto/api.proto declares them in
// Calico v3.30.0, v3.30.7, v3.31.7, v3.32.1 and master 87c15906f2. This
// table is the oracle: it is copied from Goldmane's file, not from ours.
var upstreamFields = map[string]map[string]int32{
	"FlowListRequest":   {"start_time_gte": 1, "start_time_lt": 2, "page": 3, "page_size": 4, "aggregation_interval": 7},
	"FlowListResult":    {"meta": 1, "flows": 2},
	"ListMetadata":      {"totalPages": 1, "totalResults": 2},
	"FlowStreamRequest": {"start_time_gte": 1, "aggregation_interval": 3},
	"FlowResult":        {"id": 1, "flow": 2},
	"StatisticsRequest": {"start_time_gte": 1, "start_time_lt": 2},
	"StatisticsResult":  {"policy": 1},
	"FlowKey": {
		"source_name": 1, "source_namespace": 2, "source_type": 3,
		"dest_name": 4, "dest_namespace": 5, "dest_type": 6, "dest_port": 7,
		"dest_service_name": 8, "dest_service_namespace": 9, "dest_service_port_name": 10, "dest_service_port": 11,
		"proto": 12, "reporter": 13, "action": 14, "policies": 15,
	},
	"Flow": {
		"Key": 1, "start_time": 2, "end_time": 3, "source_labels": 4, "dest_labels": 5,
		"packets_in": 6, "packets_out": 7, "bytes_in": 8, "bytes_out": 9,
		"num_connections_started": 10, "num_connections_completed": 11, "num_connections_live": 12,
	},
	"PolicyTrace": {"enforced_policies": 1, "pending_policies": 2},
	"PolicyHit": {
		"kind": 1, "namespace": 2, "name": 3, "tier": 4, "action": 5,
		"policy_index": 6, "rule_index": 7, "trigger": 8,
	},
}

// Goldmane's enum values; PolicyKind 7 and 8 are named up to 3.31 and
// reserved from 3.32, which adds 11.
var upstreamEnums = map[string]map[string]int32{
	"Action": {"ActionUnspecified": 0, "Allow": 1, "Deny": 2, "Pass": 3},
	"PolicyKind": {
		"KindUnspecified": 0, "CalicoNetworkPolicy": 1, "GlobalNetworkPolicy": 2,
		"StagedNetworkPolicy": 3, "StagedGlobalNetworkPolicy": 4, "StagedKubernetesNetworkPolicy": 5,
		"NetworkPolicy": 6, "AdminNetworkPolicy": 7, "BaselineAdminNetworkPolicy": 8,
		"Profile": 9, "EndOfTier": 10, "ClusterNetworkPolicy": 11,
	},
	"EndpointType": {"EndpointTypeUnspecified": 0, "WorkloadEndpoint": 1, "HostEndpoint": 2, "NetworkSet": 3, "Network": 4},
	"Reporter":     {"ReporterUnspecified": 0, "Src": 1, "Dst": 2},
}

func TestFieldNumbersAreGoldmanes(t *testing.T) {
	file := goldmanepb.File_flows_goldmanepb_goldmane_proto
	if file.Package() != "goldmane" {
		t.Fatalf("package %q, Goldmane's is goldmane", file.Package())
	}
	for msgName, fields := range upstreamFields {
		md := file.Messages().ByName(protoreflect.Name(msgName))
		if md == nil {
			t.Errorf("message %s is missing", msgName)
			continue
		}
		if md.Fields().Len() != len(fields) {
			t.Errorf("%s has %d fields, the table %d: add the new field's Goldmane number to the table", msgName, md.Fields().Len(), len(fields))
		}
		for name, number := range fields {
			fd := md.Fields().ByName(protoreflect.Name(name))
			switch {
			case fd == nil:
				t.Errorf("%s.%s is missing", msgName, name)
			case fd.Number() != protoreflect.FieldNumber(number):
				t.Errorf("%s.%s is field %d, Goldmane's is %d", msgName, name, fd.Number(), number)
			}
		}
	}
	for enumName, values := range upstreamEnums {
		ed := file.Enums().ByName(protoreflect.Name(enumName))
		if ed == nil {
			t.Errorf("enum %s is missing", enumName)
			continue
		}
		if ed.Values().Len() != len(values) {
			t.Errorf("%s has %d values, the table %d", enumName, ed.Values().Len(), len(values))
		}
		for name, number := range values {
			vd := ed.Values().ByName(protoreflect.Name(name))
			if vd == nil || vd.Number() != protoreflect.EnumNumber(number) {
				t.Errorf("%s.%s is not %d", enumName, name, number)
			}
		}
	}
}

// The types of the fields calico-pni reads: a field of the right number but
// the wrong type would not decode.
func TestFieldTypesAreGoldmanes(t *testing.T) {
	file := goldmanepb.File_flows_goldmanepb_goldmane_proto
	cases := []struct {
		field string
		kind  protoreflect.Kind
		list  bool
		of    string // message or enum type
	}{
		{"FlowStreamRequest.start_time_gte", protoreflect.Int64Kind, false, ""},
		{"FlowResult.flow", protoreflect.MessageKind, false, "goldmane.Flow"},
		{"Flow.Key", protoreflect.MessageKind, false, "goldmane.FlowKey"},
		{"Flow.start_time", protoreflect.Int64Kind, false, ""},
		{"Flow.source_labels", protoreflect.StringKind, true, ""},
		{"Flow.num_connections_started", protoreflect.Int64Kind, false, ""},
		{"FlowKey.source_type", protoreflect.EnumKind, false, "goldmane.EndpointType"},
		{"FlowKey.dest_port", protoreflect.Int64Kind, false, ""},
		{"FlowKey.proto", protoreflect.StringKind, false, ""},
		{"FlowKey.reporter", protoreflect.EnumKind, false, "goldmane.Reporter"},
		{"FlowKey.action", protoreflect.EnumKind, false, "goldmane.Action"},
		{"FlowKey.policies", protoreflect.MessageKind, false, "goldmane.PolicyTrace"},
		{"PolicyTrace.pending_policies", protoreflect.MessageKind, true, "goldmane.PolicyHit"},
		{"PolicyHit.kind", protoreflect.EnumKind, false, "goldmane.PolicyKind"},
		{"PolicyHit.rule_index", protoreflect.Int64Kind, false, ""},
		{"PolicyHit.trigger", protoreflect.MessageKind, false, "goldmane.PolicyHit"},
	}
	for _, c := range cases {
		d, err := findField(file, c.field)
		if err != nil {
			t.Error(err)
			continue
		}
		of := ""
		if d.Message() != nil {
			of = string(d.Message().FullName())
		} else if d.Enum() != nil {
			of = string(d.Enum().FullName())
		}
		if d.Kind() != c.kind || d.IsList() != c.list || of != c.of {
			t.Errorf("%s: %v list=%v %s, Goldmane's is %v list=%v %s", c.field, d.Kind(), d.IsList(), of, c.kind, c.list, c.of)
		}
	}
}

func findField(file protoreflect.FileDescriptor, path string) (protoreflect.FieldDescriptor, error) {
	for i := range len(path) {
		if path[i] == '.' {
			md := file.Messages().ByName(protoreflect.Name(path[:i]))
			if md == nil {
				break
			}
			if fd := md.Fields().ByName(protoreflect.Name(path[i+1:])); fd != nil {
				return fd, nil
			}
		}
	}
	return nil, errMissing(path)
}

type errMissing string

func (e errMissing) Error() string { return string(e) + " is missing" }

// The services and their methods, with Goldmane's paths and streaming.
func TestServicesAreGoldmanes(t *testing.T) {
	file := goldmanepb.File_flows_goldmanepb_goldmane_proto
	cases := []struct {
		service, method, in, out string
		serverStreams            bool
		path                     string
	}{
		{"Flows", "List", "FlowListRequest", "FlowListResult", false, goldmanepb.Flows_List_FullMethodName},
		{"Flows", "Stream", "FlowStreamRequest", "FlowResult", true, goldmanepb.Flows_Stream_FullMethodName},
		{"Flows", "FilterHints", "FilterHintsRequest", "FilterHintsResult", false, goldmanepb.Flows_FilterHints_FullMethodName},
		{"Statistics", "List", "StatisticsRequest", "StatisticsResult", true, goldmanepb.Statistics_List_FullMethodName},
	}
	for _, c := range cases {
		sd := file.Services().ByName(protoreflect.Name(c.service))
		if sd == nil {
			t.Errorf("service %s is missing", c.service)
			continue
		}
		md := sd.Methods().ByName(protoreflect.Name(c.method))
		if md == nil {
			t.Errorf("%s.%s is missing", c.service, c.method)
			continue
		}
		if string(md.Input().Name()) != c.in || string(md.Output().Name()) != c.out ||
			md.IsStreamingServer() != c.serverStreams || md.IsStreamingClient() {
			t.Errorf("%s.%s(%s) %s stream=%v, Goldmane's is (%s) %s stream=%v", c.service, c.method,
				md.Input().Name(), md.Output().Name(), md.IsStreamingServer(), c.in, c.out, c.serverStreams)
		}
		if want := "/goldmane." + c.service + "/" + c.method; c.path != want {
			t.Errorf("gRPC path %s, Goldmane's is %s", c.path, want)
		}
	}
	if n := file.Services().Len(); n != 2 {
		t.Errorf("%d services, want Flows and Statistics", n)
	}
}

// A flow as Goldmane encodes it, written field by field with Goldmane's
// numbers (including fields calico-pni leaves out), decodes into the
// generated types.
func TestDecodesGoldmanesWire(t *testing.T) {
	trigger := message(
		varint(1, 4), // kind: StagedGlobalNetworkPolicy
		str(3, "pni-tier-staged-deny-ingress"),
		str(4, "calico-pni"),
	)
	endOfTier := message(
		varint(1, 10), // kind: EndOfTier
		str(4, "calico-pni"),
		varint(5, 2), // action: Deny
		varint(6, 0),
		varint(7, minusOne), // rule_index: -1, as an int64 varint
		bytesField(8, trigger),
	)
	allow := message(varint(1, 9), str(3, "kns.shop"), varint(5, 1))
	trace := message(bytesField(1, allow), bytesField(2, endOfTier))
	key := message(
		str(1, "web-7c9f-"), str(2, "shop"), varint(3, 1),
		str(4, "db-0-"), str(5, "data"), varint(6, 1),
		varint(7, 5432), str(12, "TCP"), varint(13, 2), varint(14, 1),
		bytesField(15, trace),
	)
	flow := message(
		bytesField(1, key), varint(2, 1_750_000_000), varint(3, 1_750_000_015),
		str(4, "app=web"), varint(10, 3),
	)
	result := message(varint(1, 42), bytesField(2, flow))

	var got goldmanepb.FlowResult
	if err := proto.Unmarshal(result, &got); err != nil {
		t.Fatal(err)
	}
	k := got.GetFlow().GetKey()
	hit := k.GetPolicies().GetPendingPolicies()[0]
	checks := []struct {
		what      string
		got, want any
	}{
		{"id", got.GetId(), int64(42)},
		{"source namespace", k.GetSourceNamespace(), "shop"},
		{"dest type", k.GetDestType(), goldmanepb.EndpointType_WorkloadEndpoint},
		{"dest port", k.GetDestPort(), int64(5432)},
		{"reporter", k.GetReporter(), goldmanepb.Reporter_Dst},
		{"action", k.GetAction(), goldmanepb.Action_Allow},
		{"enforced profile", k.GetPolicies().GetEnforcedPolicies()[0].GetName(), "kns.shop"},
		{"pending kind", hit.GetKind(), goldmanepb.PolicyKind_EndOfTier},
		{"pending action", hit.GetAction(), goldmanepb.Action_Deny},
		{"pending rule index", hit.GetRuleIndex(), int64(-1)},
		{"trigger kind", hit.GetTrigger().GetKind(), goldmanepb.PolicyKind_StagedGlobalNetworkPolicy},
		{"trigger name", hit.GetTrigger().GetName(), "pni-tier-staged-deny-ingress"},
		{"start", got.GetFlow().GetStartTime(), int64(1_750_000_000)},
		{"labels", got.GetFlow().GetSourceLabels(), []string{"app=web"}},
		{"connections", got.GetFlow().GetNumConnectionsStarted(), int64(3)},
	}
	for _, c := range checks {
		if !equal(c.got, c.want) {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}

	// A field Goldmane has and calico-pni does not declare (FlowListRequest
	// filter, field 6) is skipped, not an error.
	var req goldmanepb.FlowListRequest
	if err := proto.Unmarshal(message(varint(1, 5), bytesField(6, message(str(1, "x")))), &req); err != nil {
		t.Fatalf("an unknown field broke decoding: %v", err)
	}
	if req.GetStartTimeGte() != 5 {
		t.Errorf("start_time_gte %d, want 5", req.GetStartTimeGte())
	}
}

func equal(a, b any) bool {
	if as, ok := a.([]string); ok {
		bs, _ := b.([]string)
		if len(as) != len(bs) {
			return false
		}
		for i := range as {
			if as[i] != bs[i] {
				return false
			}
		}
		return true
	}
	return a == b
}

// minusOne is -1 as protobuf encodes an int64: ten bytes of two's complement.
var minusOne = func() uint64 { v := int64(-1); return uint64(v) }()

type field func([]byte) []byte

func message(fields ...field) []byte {
	var b []byte
	for _, f := range fields {
		b = f(b)
	}
	return b
}

func varint(n protowire.Number, v uint64) field {
	return func(b []byte) []byte {
		return protowire.AppendVarint(protowire.AppendTag(b, n, protowire.VarintType), v)
	}
}

func str(n protowire.Number, s string) field { return bytesField(n, []byte(s)) }

func bytesField(n protowire.Number, v []byte) field {
	return func(b []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(b, n, protowire.BytesType), v)
	}
}
