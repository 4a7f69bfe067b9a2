// Package attack holds attack generators for tests: hostile peers that misbehave against a host in bounded, configurable ways. It may import anything in the module.
package attack
