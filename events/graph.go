package events

// Dependencies are the indexes of the stages stage i waits for: those its
// dependsOn names, or the stage before it in the file when it names none.
// A name that is not a stage (the parser refuses it; an old or hand-made
// definition may hold one) is left out. The decider and the lanes both
// read the graph through it.
func (d Definition) Dependencies(i int) []int {
	sd := d.Stages[i]
	if len(sd.DependsOn) == 0 {
		if i == 0 {
			return nil
		}
		return []int{i - 1}
	}
	var out []int
	for _, name := range sd.DependsOn {
		for j, st := range d.Stages {
			if st.Name == name && j != i {
				out = append(out, j)
				break
			}
		}
	}
	return out
}
