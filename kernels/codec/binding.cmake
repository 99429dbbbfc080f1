# binding
