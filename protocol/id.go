// Package protocol names libp2p application protocols.
//
// It is a vocabulary package: it imports nothing of p2pnet's.
package protocol

// ID identifies a protocol spoken on a stream, such as "/ipfs/ping/1.0.0".
// It is what multistream-select negotiates.
type ID string

// ConvertFromStrings turns a list of strings into protocol IDs.
func ConvertFromStrings(ids []string) []ID {
	out := make([]ID, len(ids))
	for i, s := range ids {
		out[i] = ID(s)
	}
	return out
}

// ConvertToStrings turns a list of protocol IDs into strings.
func ConvertToStrings(ids []ID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = string(id)
	}
	return out
}
